#!/usr/bin/env bash
# End-to-end checks of the quire program's contract: same seed, same trace; different
# seeds, different traces; exit codes for success and for bad usage.
# Usage: scripts/cli-checks.sh PATH_TO_QUIRE [PATH_TO_QUIRE_OF_ANOTHER_BUILD]
# With a second program (e.g. the sanitizer build), also checks that both builds print
# the same trace for the same seed.
set -uo pipefail
quire="$1"
other="${2:-}"
source "$(dirname "$0")/check-lib.sh"
trace_of() { "$quire" sim selftest --seed "$1" | grep -o 'trace=0x[0-9a-f]\{16\}'; }

t1=$(trace_of 1)
t1b=$(trace_of 1)
t2=$(trace_of 2)
check "seed 1 prints a trace" test -n "$t1"
check "seed 1 twice prints the same trace" test "$t1" = "$t1b"
check "seed 2 prints a different trace" test "$t1" != "$t2"
check "a passing run exits 0" test "$(exit_of "$quire" sim selftest --seed 3)" = 0
check "a seed that is not a number exits 2" test "$(exit_of "$quire" sim selftest --seed abc)" = 2
check "an unknown flag exits 2" test "$(exit_of "$quire" sim selftest --seed 1 --bogus)" = 2
check "an unknown subcommand exits 2" test "$(exit_of "$quire" sim nosuch)" = 2
check "no subcommand exits 2" test "$(exit_of "$quire")" = 2
json=$(mktemp)
"$quire" sim selftest --seed 4 --json "$json" >/dev/null
check "--json writes the report" python3 -c "
import json,sys
j=json.load(open('$json'))
assert set(['seed','trace_hash','events','sim_seconds','wall_seconds','passed']) <= set(j), j.keys()
assert j['seed']==4 and j['passed'] is True and j['trace_hash'].startswith('0x') and len(j['trace_hash'])==18
"
rm -f "$json"
if [ -n "$other" ]; then
  t1_other=$("$other" sim selftest --seed 1 | grep -o 'trace=0x[0-9a-f]\{16\}')
  check "another build prints the same trace for seed 1" test "$t1" = "$t1_other"
fi
echo "cli-checks: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
