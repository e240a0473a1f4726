#!/usr/bin/env bash
# Responses over one frame (issue 12 item 6) against a real page server: a page chain and a
# checkpoint list of 5 records of 15 MiB each (75 MiB, over the 64 MiB frame limit) are
# written with scripts/hostile_peer.py (raw sockets), then read. An older client's request
# for the whole of either gets a typed error (InvalidArgument) at once, where the response
# used to be dropped and the request never completed; read in parts, each comes back whole
# and intact. Afterwards the server is alive and serves a fresh client, no response was
# refused by the transport's last line of defence (log id 31006), and `pl verify` finds the
# directory INTACT with every record. About 10 s; every process started here is killed on
# exit.
# Usage: scripts/large-response-checks.sh PATH_TO_QUIRE
set -uo pipefail
quire="$1"
here="$(dirname "$0")"
source "$here/check-lib.sh"
check_verbose=1

data="$tmp/data"
start_server server "$data"
check "the server starts and prints its port" test -n "$port"
[ -n "$port" ] || { echo "large-response-checks: $pass passed, $fail failed"; exit 1; }
addr="127.0.0.1:$port"

timeout 60 python3 "$here/hostile_peer.py" bigchain "$addr" --pid "$pid" --records 5 \
  --payload-bytes $((15 << 20)) >"$tmp/bigchain.out" 2>&1
code=$?
cat "$tmp/bigchain.out"
check "the chain and the list are written and read (exit $code)" test "$code" = 0
for op in get_page list_checkpoints; do
  check "$op of 75 MiB, whole: a typed error" grep -q "^$op whole: InvalidArgument" "$tmp/bigchain.out"
  check "$op of 75 MiB, in parts: every record, intact" \
    grep -q "^$op in parts: OK, 5 records in 5 parts .* intact$" "$tmp/bigchain.out"
done

check "the server is alive" kill -0 "$pid"
timeout 10 "$quire" pl status --server "$addr" --timeout-ms 5000 >"$tmp/status.json" 2>/dev/null
check "a fresh client is served" test "$(json_field "$tmp/status.json" durable_lsn 2>/dev/null)" = 10
check "no response needed the transport's oversize refusal (31006)" \
  bash -c "! grep -q '\"id\":31006,' '$tmp/server.log'"

stop_server "$pid"
check "SIGTERM stops the server with exit 0" test "$code" = 0
"$quire" pl verify --data "$data" >"$tmp/verify.out" 2>&1
check "pl verify finds the directory INTACT" grep -q "^INTACT$" "$tmp/verify.out"
check "... with every record" grep -q "^totals: records=10 " "$tmp/verify.out"

echo "large-response-checks: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
