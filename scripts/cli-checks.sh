#!/usr/bin/env bash
# End-to-end checks of the quire program's contract: same seed, same trace; different
# seeds, different traces; exit codes for success and for bad usage; `bench engine` writes
# its figures.
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
bad=$("$quire" frobnicate 2>&1; echo "exit=$?")
check "an unknown command exits 2 naming it and the valid ones" bash -c "grep -q 'exit=2' <<<\"\$1\" && grep -q \"unknown command 'frobnicate'.*sim, pageserver\" <<<\"\$1\"" _ "$bad"
json=$(mktemp)
"$quire" sim selftest --seed 4 --json "$json" >/dev/null
check "--json writes the report" python3 -c "
import json,sys
j=json.load(open('$json'))
assert set(['seed','trace_hash','events','sim_seconds','wall_seconds','passed']) <= set(j), j.keys()
assert j['seed']==4 and j['passed'] is True and j['trace_hash'].startswith('0x') and len(j['trace_hash'])==18
"
rm -f "$json"
# bench engine: a tiny run writes every figure; its CMK file stays private; bad flags exit 2.
bench_dir=$(mktemp -d)
check "bench engine with tiny parameters exits 0" test "$(exit_of "$quire" bench engine --keys 500 \
  --rounds 1 --data "$bench_dir/data" --json "$bench_dir/engine.json")" = 0
check "bench engine --json writes the figures" python3 -c "
import json
j=json.load(open('$bench_dir/engine.json'))
for k in ['keys','value_bytes','rounds','machine','encrypted','plaintext','ratios','cpu_ratios',
          'encryption_overhead_ratio','encryption_overhead_goal_max','encryption_overhead_goal_met',
          'crypto','crypto_ratio_goal_min','crypto_ratio_goal_met','wall_seconds']:
  assert k in j, k
assert j['keys']==500 and j['rounds']==1 and j['value_bytes']==100
assert j['machine']['cores']>=1 and j['machine']['openssl_version'].startswith('OpenSSL')
for m in ['encrypted','plaintext']:
  for w in ['write_checkpoint','warm_get','cold_get']:
    assert j[m][w]['ops_per_s_median']>0 and len(j[m][w]['seconds_per_round'])==1, (m,w)
  assert j[m]['write_checkpoint']['checkpoints_per_round']==10
  assert j[m]['warm_get']['cache_misses_per_round']==0
  assert j[m]['cold_get']['pages_fetched_per_round']>=j['cold_gets']
for w in ['write_checkpoint','warm_get','cold_get']:
  assert j['ratios'][w]>0 and j['cpu_ratios'][w]>0, w
assert j['encryption_overhead_ratio']==j['ratios']['write_checkpoint']
assert j['encryption_overhead_goal_met']==(j['encryption_overhead_ratio']<=j['encryption_overhead_goal_max'])
assert [c['message_bytes'] for c in j['crypto']]==[4096,16384]
for c in j['crypto']:
  for f in ['seal_mb_per_s','raw_seal_mb_per_s','seal_ratio','open_mb_per_s','raw_open_mb_per_s','open_ratio']:
    assert c[f]>0, f
"
check "bench engine keeps the CMK file mode 600" test "$(stat -c %a "$bench_dir/data/compute/cmk.key" 2>/dev/null)" = 600
check "bench engine: a malformed --keys exits 2" test "$(exit_of "$quire" bench engine --keys abc)" = 2
check "bench engine: --rounds 0 exits 2" test "$(exit_of "$quire" bench engine --rounds 0)" = 2
check "bench engine: an unknown flag exits 2" test "$(exit_of "$quire" bench engine --bogus)" = 2
rm -rf "$bench_dir"
# kms: the CMK file is created private; an exposed, foreign or missing one is refused at
# start-up with an error naming the file and the key id; keys are never printed.
kms_dir=$(mktemp -d)
check "kms status --create exits 0" test "$(exit_of "$quire" kms status --dir "$kms_dir/c" --create)" = 0
check "kms status creates the CMK file mode 600" test "$(stat -c %a "$kms_dir/c/cmk.key")" = 600
check "kms rotate adds version 2" python3 -c "
import json,subprocess
j=json.loads(subprocess.run(['$quire','kms','rotate','--dir','$kms_dir/c'],capture_output=True,text=True,check=True).stdout)
assert j['key_id']=='quire-cmk' and j['active_version']==2 and j['versions']==[1,2], j
"
chmod 640 "$kms_dir/c/cmk.key"
kms_err=$("$quire" kms status --dir "$kms_dir/c" 2>&1 >/dev/null; echo "exit=$?")
check "kms: a group-readable CMK file exits 1" grep -q "exit=1" <<<"$kms_err"
check "kms: the refusal names the file and the key id" grep -q "cmk.key.*quire-cmk" <<<"$kms_err"
chmod 600 "$kms_dir/c/cmk.key"
kms_err=$("$quire" kms status --dir "$kms_dir/c" --key-id other 2>&1 >/dev/null; echo "exit=$?")
check "kms: a CMK file for another key id is refused naming both" grep -q "quire-cmk.*other.*exit=1" <<<"$(tr '\n' ' ' <<<"$kms_err")"
check "kms: a missing CMK file exits 1" test "$(exit_of "$quire" kms status --dir "$kms_dir/missing")" = 1
key_hex=$(python3 -c "
import sys
b=open('$kms_dir/c/cmk.key','rb').read()
print(b[-36:-4].hex())")
check "kms: no output carries key bytes" bash -c "! ( '$quire' kms status --dir '$kms_dir/c' 2>&1; '$quire' kms rotate --dir '$kms_dir/c' 2>&1 ) | grep -qi '$key_hex'"
check "kms: a missing --dir exits 2" test "$(exit_of "$quire" kms status)" = 2
# node: bad configurations exit 2 naming the problem; a missing CMK file exits 1 naming it.
node_args=(node --name n --pageservers 127.0.0.1:1,127.0.0.1:2,127.0.0.1:3 --etcd http://127.0.0.1:9)
check "node: client port 0 exits 2" test "$(exit_of "$quire" "${node_args[@]}" --client 127.0.0.1:0 --cmk "$kms_dir/c/cmk.key")" = 2
check "node: a wildcard client address without --advertise exits 2" test "$(exit_of "$quire" "${node_args[@]}" --client 0.0.0.0:7 --cmk "$kms_dir/c/cmk.key")" = 2
check "node: a write quorum that is not a majority exits 2" test "$(exit_of "$quire" "${node_args[@]}" --client 127.0.0.1:7 --write-quorum 1 --cmk "$kms_dir/c/cmk.key")" = 2
check "node: an unknown pick-up policy exits 2" test "$(exit_of "$quire" "${node_args[@]}" --client 127.0.0.1:7 --pickup-policy bogus --cmk "$kms_dir/c/cmk.key")" = 2
check "node: --etcd https:// without --tls-* exits 2" test "$(exit_of "$quire" node --name n --pageservers 127.0.0.1:1,127.0.0.1:2,127.0.0.1:3 --etcd https://127.0.0.1:9 --client 127.0.0.1:7 --cmk "$kms_dir/c/cmk.key")" = 2
check "node: --etcd with http:// and https:// mixed exits 2" test "$(exit_of "$quire" node --name n --pageservers 127.0.0.1:1,127.0.0.1:2,127.0.0.1:3 --etcd http://127.0.0.1:9,https://127.0.0.1:8 --client 127.0.0.1:7 --cmk "$kms_dir/c/cmk.key")" = 2
check "node: plaintext to a page server not on loopback exits 2" test "$(exit_of "$quire" node --name n --pageservers 10.0.0.1:1,127.0.0.1:2,127.0.0.1:3 --etcd http://127.0.0.1:9 --client 127.0.0.1:7 --cmk "$kms_dir/c/cmk.key")" = 2
check "pageserver: plaintext to a peer not on loopback exits 2" test "$(exit_of "$quire" pageserver --listen 127.0.0.1:0 --data "$kms_dir/ps-peers" --peers 10.0.0.2:7000)" = 2
check "node: --group-pipeline-min 0 exits 2" test "$(exit_of "$quire" "${node_args[@]}" --client 127.0.0.1:7 --group-pipeline-min 0 --cmk "$kms_dir/c/cmk.key")" = 2
# cluster init: --group-pipeline-min reaches cluster.json and every node's command line.
gp_dir=$(mktemp -d)
check "cluster init --group-pipeline-min 5000 exits 2" test "$(exit_of "$quire" cluster init "$gp_dir/big" --group-pipeline-min 5000)" = 2
check "cluster init --group-pipeline-min 8 writes it into cluster.json" bash -c "'$quire' cluster init '$gp_dir/c' --group-pipeline-min 8 >/dev/null && python3 -c \"import json,sys; sys.exit(json.load(open('$gp_dir/c/cluster.json')).get('group_pipeline_min') != 8)\""
check "cluster init --group-gather-us 200000 exits 2" test "$(exit_of "$quire" cluster init "$gp_dir/big" --group-gather-us 200000)" = 2
check "cluster init --group-gather-us 0 writes it into cluster.json" bash -c "'$quire' cluster init '$gp_dir/g' --group-gather-us 0 >/dev/null && python3 -c \"import json,sys; sys.exit(json.load(open('$gp_dir/g/cluster.json')).get('group_gather_us') != 0)\""
check "cluster init without --group-gather-us leaves the nodes' default" python3 -c "import json,sys; sys.exit('group_gather_us' in json.load(open('$gp_dir/c/cluster.json')))"
# cluster init --requirepass: DIR/requirepass (0600), never cluster.json; bad passwords exit 2.
check "cluster init --requirepass '' exits 2" test "$(exit_of "$quire" cluster init "$gp_dir/e" --requirepass '')" = 2
check "cluster init --requirepass with a newline exits 2" test "$(exit_of "$quire" cluster init "$gp_dir/e" --requirepass "$(printf 'a\nb')")" = 2
check "cluster init --requirepass writes DIR/requirepass, mode 0600" bash -c "'$quire' cluster init '$gp_dir/p' --requirepass 'pa ss' >/dev/null && test \"\$(stat -c %a '$gp_dir/p/requirepass')\" = 600 && test \"\$(cat '$gp_dir/p/requirepass')\" = 'pa ss'"
check "cluster init --requirepass keeps the password out of cluster.json" bash -c "! grep -q 'pa ss' '$gp_dir/p/cluster.json' && grep -q '\"requirepass\": true' '$gp_dir/p/cluster.json'"
rm -f "$gp_dir/p/requirepass"
pw_err=$("$quire" cluster status "$gp_dir/p" 2>&1; echo "exit=$?")
check "cluster status: a missing DIR/requirepass exits 1 naming it" bash -c "grep -q 'exit=1' <<<\"\$1\" && grep -q 'requirepass does not exist' <<<\"\$1\"" _ "$pw_err"
rm -rf "$gp_dir"
check "node: --group-gather-us 100001 exits 2" test "$(exit_of "$quire" "${node_args[@]}" --client 127.0.0.1:7 --group-gather-us 100001 --cmk "$kms_dir/c/cmk.key")" = 2
pw_err=$("$quire" "${node_args[@]}" --client 127.0.0.1:7 --cmk "$kms_dir/c/cmk.key" --requirepass-file "$kms_dir/missing/pw" 2>&1 >/dev/null; echo "exit=$?")
check "node: a missing --requirepass-file exits 1 naming it" bash -c "grep -q 'exit=1' <<<\"\$1\" && grep -q 'missing/pw does not exist' <<<\"\$1\"" _ "$pw_err"
printf '\n' > "$kms_dir/empty-pw"
check "node: an empty --requirepass-file exits 1" test "$(exit_of "$quire" "${node_args[@]}" --client 127.0.0.1:7 --cmk "$kms_dir/c/cmk.key" --requirepass-file "$kms_dir/empty-pw")" = 1
check "node: --requirepass with --requirepass-file exits 2" test "$(exit_of "$quire" "${node_args[@]}" --client 127.0.0.1:7 --cmk "$kms_dir/c/cmk.key" --requirepass x --requirepass-file "$kms_dir/empty-pw")" = 2
node_err=$("$quire" "${node_args[@]}" --client 127.0.0.1:7 --cmk "$kms_dir/missing/cmk.key" 2>&1 >/dev/null; echo "exit=$?")
check "node: a missing CMK file exits 1 naming it" bash -c "grep -q 'exit=1' <<<\"\$1\" && grep -q 'missing/cmk.key does not exist' <<<\"\$1\"" _ "$node_err"
rm -rf "$kms_dir"
# chaos race: the report's race forced; each policy's exit code, the JSON report, bad input.
race_dir=$(mktemp -d)
check "chaos race --policy accept passes (exit 0)" test "$(exit_of "$quire" chaos race --policy accept --seed 2 \
  --duration 5 --json "$race_dir/accept.json")" = 0
check "chaos race --json writes the report" python3 -c "
import json
j=json.load(open('$race_dir/accept.json'))
for k in ['scenario','policy','seed','passed','trace_hash','sim_seconds','wall_seconds','writes_acked',
          'writes_lost','reads_checked','rotations','checkpoints_written','pickups','violations']:
  assert k in j, k
for k in ['installed','stale_keystore_accepted','skipped','keystore_ahead_retries','unavailable_retries',
          'resyncs','older_ignored']:
  assert k in j['pickups'], k
assert j['scenario']=='race' and j['policy']=='accept' and j['seed']==2 and j['passed'] is True
assert j['writes_lost']==0 and j['violations']==[] and j['race']['reached'] is True
assert j['pickups']['stale_keystore_accepted']>=1
"
"$quire" chaos race --policy abort --seed 2 --duration 5 --json "$race_dir/abort.json" >"$race_dir/abort.out" 2>/dev/null
check "chaos race --policy abort fails (exit 1)" test "$?" = 1
check "chaos race --policy abort names the stale-keystore pick-up" python3 -c "
import json
j=json.load(open('$race_dir/abort.json'))
assert j['passed'] is False and 'StaleKeystore' in j['violations'][0] and 'aborted' in j['violations'][0], j['violations']
"
check "chaos race prints the replay command when it fails" grep -q "replay: quire chaos race --policy abort --seed 2" "$race_dir/abort.out"
r1=$("$quire" chaos race --seed 9 --duration 3 | grep -o 'trace 0x[0-9a-f]\{16\}')
r2=$("$quire" chaos race --seed 9 --duration 3 | grep -o 'trace 0x[0-9a-f]\{16\}')
check "chaos race: same seed, same trace" test -n "$r1" -a "$r1" = "$r2"
bad=$("$quire" chaos race --policy bogus 2>&1; echo "exit=$?")
check "chaos race: an unknown policy exits 2 listing the policies" bash -c "grep -q 'exit=2' <<<'$bad' && grep -q 'accept,skip,resync,abort' <<<'$bad'"
bad=$("$quire" chaos nosuch 2>&1; echo "exit=$?")
check "chaos: an unknown scenario exits 2 listing the scenarios" bash -c "grep -q 'exit=2' <<<'$bad' && grep -q 'race' <<<'$bad'"
check "chaos race: a seed that is not a number exits 2" test "$(exit_of "$quire" chaos race --seed abc)" = 2
# chaos real (a real cluster: its runs are too long for this script): bad usage only.
check "chaos real: an unknown policy exits 2" test "$(exit_of "$quire" chaos real --policy bogus)" = 2
check "chaos real: a duration under 10 s exits 2" test "$(exit_of "$quire" chaos real --duration 5)" = 2
check "chaos real: a seed that is not a number exits 2" test "$(exit_of "$quire" chaos real --seed abc)" = 2
check "chaos real: an unknown planted fault exits 2" test "$(exit_of "$quire" chaos real --plant bogus)" = 2
rm -rf "$race_dir"
if [ -n "$other" ]; then
  t1_other=$("$other" sim selftest --seed 1 | grep -o 'trace=0x[0-9a-f]\{16\}')
  check "another build prints the same trace for seed 1" test "$t1" = "$t1_other"
fi
# sim kek: the seed runner. Bad input exits 2; against a stand-in worker it reports a
# checker failure and a crash as failed seeds, keeps only their output, and tidies up.
# sim_kek_rejects FLAG ARGS...: `quire sim kek ARGS` exits 2 with a message naming FLAG.
sim_kek_rejects() {
  local flag="$1" out
  shift
  out=$("$quire" sim kek "$@" 2>&1)
  [ $? = 2 ] && grep -q -- "$flag" <<<"$out"
}
for range in 5 a..b 9..3 1.. ..4 -1..3 1..18446744073709551616 1..1000001; do
  check "sim kek: --seeds $range exits 2" sim_kek_rejects --seeds: --seeds "$range"
done
check "sim kek: a missing --seeds exits 2" sim_kek_rejects --seeds --jobs 1
check "sim kek: --jobs 0 exits 2" sim_kek_rejects --jobs: --seeds 1..3 --jobs 0
check "sim kek: --jobs 65 exits 2" sim_kek_rejects --jobs: --seeds 1..3 --jobs 65
check "sim kek: a --jobs that is not a number exits 2" sim_kek_rejects --jobs --seeds 1..3 --jobs x
bad=$("$quire" sim kek --seeds 9..3 2>&1; echo "exit=$?")
check "sim kek: a reversed range says so" grep -q "first seed 9 is greater than the last seed 3" <<<"$bad"
bad=$("$quire" sim kek --seeds 1..3 --policy bogus 2>&1; echo "exit=$?")
check "sim kek: an unknown policy exits 2 listing the policies" bash -c "grep -q 'exit=2' <<<'$bad' && grep -q 'accept,skip,resync,abort' <<<'$bad'"
kek_dir=$(mktemp -d)
mkdir "$kek_dir/tmp"
cat >"$kek_dir/worker" <<'WORKER'
#!/usr/bin/env bash
# A stand-in for `quire chaos kek`: seed 2 fails a checker, seed 3 crashes, the rest pass.
[ "$1 $2" = "chaos kek" ] || exit 2
shift 2
while [ $# -gt 0 ]; do
  case "$1" in --seed) seed=$2 ;; --json) json=$2 ;; --add-fault) added="$added $2" ;; --policy|--duration|--standbys) ;; *) exit 2 ;; esac
  shift 2
done
echo "$seed$added" >>"$(dirname "$0")/started"
echo "running seed $seed"
[ "$seed" = 3 ] && { echo "about to crash"; kill -SEGV $$; }
passed=true; checker=""; violations="[]"; code=0
[ "$seed" = 2 ] && { passed=false; checker=no_lost_writes; violations='["write 7 lost"]'; code=1; }
printf '{"seed":%s,"passed":%s,"trace_hash":"0x%016x","sim_seconds":10.5,"failed_checker":"%s","violations":%s}\n' \
  "$seed" "$passed" "$seed" "$checker" "$violations" >"$json"
exit $code
WORKER
chmod +x "$kek_dir/worker"
TMPDIR="$kek_dir/tmp" "$quire" sim kek --seeds 1..4 --jobs 2 --policy skip --worker-program "$kek_dir/worker" \
  --json "$kek_dir/fake.json" >"$kek_dir/fake.out" 2>/dev/null
check "sim kek: a failing seed exits 1" test "$?" = 1
check "sim kek: a checker failure is reported with its first violation" \
  grep -q "^FAILED seed 2: no_lost_writes: write 7 lost" "$kek_dir/fake.out"
check "sim kek: a crash is reported as an infrastructure failure with its signal" \
  grep -q "^FAILED seed 3: infrastructure: killed by signal 11" "$kek_dir/fake.out"
check "sim kek: a crash is reported with the tail of its output" grep -q "| about to crash" "$kek_dir/fake.out"
check "sim kek: a failing seed is reported with its replay command" \
  grep -q "^  replay: quire chaos kek --seed 2 --policy skip$" "$kek_dir/fake.out"
check "sim kek: only the failing seeds' output is kept" \
  test "$(cd "$kek_dir"/tmp/quire-sim-kek-* 2>/dev/null && ls | sort | tr '\n' ' ')" = "seed-2.json seed-2.out seed-3.out "
check "sim kek --json summarizes a failing run" python3 -c "
import json
j=json.load(open('$kek_dir/fake.json'))
assert j['seeds']==4 and j['passed']==2 and j['failures']==2 and j['failed_seeds']==[2,3], j
assert j['first_failure_seed'] in (2,3) and j['time_to_first_failure_seconds']>=0
assert j['sim_seconds']==31.5 and j['jobs']==2 and j['policy']=='skip'
"
rm -rf "$kek_dir/tmp"/* "$kek_dir/started"
TMPDIR="$kek_dir/tmp" "$quire" sim kek --seeds 1..2 --jobs 1 --add-fault disk_full --add-fault coordinator_kill \
  --worker-program "$kek_dir/worker" --json "$kek_dir/added.json" >"$kek_dir/added.out" 2>/dev/null
check "sim kek --add-fault passes each added kind on to every seed's worker" \
  test "$(tr '\n' ' ' <"$kek_dir/started")" = "1 disk_full coordinator_kill 2 disk_full coordinator_kill "
check "sim kek --add-fault: a failing seed's replay command carries the added kinds" \
  grep -q "^  replay: quire chaos kek --seed 2 --policy accept --add-fault disk_full --add-fault coordinator_kill$" "$kek_dir/added.out"
check "sim kek --add-fault: the JSON summary lists the added kinds" python3 -c "
import json
assert json.load(open('$kek_dir/added.json'))['add_faults']==['disk_full','coordinator_kill']
"
bad=$("$quire" sim kek --seeds 1..3 --add-fault bogus 2>&1; echo "exit=$?")
check "sim kek: an unknown --add-fault kind exits 2 naming it" \
  grep -qz "unknown fault kind 'bogus'.*exit=2" <<<"$bad"
rm -rf "$kek_dir/tmp"/* "$kek_dir/started"
TMPDIR="$kek_dir/tmp" "$quire" sim kek --seeds 4..9 --jobs 1 --stop-on-failure --worker-program "$kek_dir/worker" \
  >/dev/null 2>&1
check "sim kek: a passing run exits 0 and leaves no temporary files" \
  bash -c "test $? = 0 && test -z \"\$(ls -A '$kek_dir/tmp')\""
rm -f "$kek_dir/started"
TMPDIR="$kek_dir/tmp" "$quire" sim kek --seeds 1..9 --jobs 1 --stop-on-failure --worker-program "$kek_dir/worker" >/dev/null 2>&1
check "sim kek --stop-on-failure exits 1, the seeds started in order up to the first failure" \
  bash -c "test $? = 1 && test \"\$(cut -d' ' -f1 '$kek_dir/started' | tr '\n' ' ')\" = '1 2 '"
if "$quire" chaos kek --help >/dev/null 2>&1; then
  kek_out=$("$quire" sim kek --seeds 1..3 --jobs 2 --duration 20 --json "$kek_dir/real.json" 2>/dev/null)
  check "sim kek --seeds 1..3 --jobs 2 --duration 20 exits 0" test "$?" = 0
  check "sim kek prints a summary with seeds_per_s" grep -q "seeds_per_s=[0-9]" <<<"$kek_out"
  check "sim kek --json writes the summary" python3 -c "
import json
j=json.load(open('$kek_dir/real.json'))
for k in ['seeds','passed','failures','failed_seeds','first_failure_seed','wall_seconds',
          'time_to_first_failure_seconds','seeds_per_s','sim_seconds_per_wall_second',
          'sim_seconds_per_wall_second_per_core','jobs','policy']:
  assert k in j, k
assert j['seeds']==3 and j['passed']==3 and j['failures']==0 and j['failed_seeds']==[], j
assert j['first_failure_seed'] is None and j['time_to_first_failure_seconds'] is None
assert j['jobs']==2 and j['policy']=='accept' and j['seeds_per_s']>0
assert j['sim_seconds_per_wall_second']>0
assert abs(j['sim_seconds_per_wall_second_per_core']*2-j['sim_seconds_per_wall_second'])<1e-6
"
  # chaos kek itself: the same seed prints the same report; JSON fields; bad input.
  "$quire" chaos kek --seed 4 --duration 15 --json "$kek_dir/k1.json" >"$kek_dir/k1.out" 2>/dev/null
  check "chaos kek --seed 4 passes (exit 0)" test "$?" = 0
  "$quire" chaos kek --seed 4 --duration 15 >"$kek_dir/k2.out" 2>/dev/null
  check "chaos kek: the same seed prints the same report" cmp -s "$kek_dir/k1.out" "$kek_dir/k2.out"
  check "chaos kek prints the seed's fault mix first" grep -q "^running seed 4 .*fault mix: " <(head -1 "$kek_dir/k1.out")
  check "chaos kek --json has the chaos counts and the fault mix" python3 -c "
import json
j=json.load(open('$kek_dir/k1.json'))
for k in ['scenario','policy','seed','passed','trace_hash','sim_seconds','wall_seconds','writes_acked','writes_lost',
          'reads_checked','rotations','checkpoints_written','pickups','violations','chaos','fault_mix','failed_checker']:
  assert k in j, k
for k in ['kill_standby_page_server','rapid_seal_burst','page_server_kills','partitions','disk_faults','clock_skews',
          'standby_restarts']:
  assert k in j['chaos'], k
assert j['scenario']=='kek' and j['passed'] is True and j['seed']==4
"
  echo '{"scenario":"kek","seed":1}' >"$kek_dir/bad.replay.json"
  bad=$("$quire" chaos kek --replay "$kek_dir/bad.replay.json" 2>&1; echo "exit=$?")
  check "chaos kek: a replay file that does not parse exits 2 with a message" \
    bash -c "grep -q 'exit=2' <<<'$bad' && grep -q 'replay file' <<<'$bad'"
  check "chaos kek: a missing replay file exits 2" test "$(exit_of "$quire" chaos kek --replay "$kek_dir/none.json")" = 2
  check "chaos kek: an unknown flag exits 2" test "$(exit_of "$quire" chaos kek --bogus)" = 2
fi
rm -rf "$kek_dir"
# certs: usage errors exit 2 and write nothing.
certs_dir=$(mktemp -d)
check "certs without a subcommand exits 2" test "$(exit_of "$quire" certs)" = 2
check "certs create-ca without --dir exits 2" test "$(exit_of "$quire" certs create-ca)" = 2
check "certs create-ca with --lifetime-days 0 exits 2" \
  test "$(exit_of "$quire" certs create-ca --dir "$certs_dir/ca" --lifetime-days 0)" = 2
check "certs create-node without --host exits 2" \
  test "$(exit_of "$quire" certs create-node --dir "$certs_dir/ca" --name n1)" = 2
check "certs create-node without --name exits 2" \
  test "$(exit_of "$quire" certs create-node --dir "$certs_dir/ca" --host 127.0.0.1)" = 2
check "certs create-node with a name that is not one path component exits 2" \
  test "$(exit_of "$quire" certs create-node --dir "$certs_dir/ca" --name ../n1 --host 127.0.0.1)" = 2
check "certs: usage errors write nothing" test -z "$(ls -A "$certs_dir")"
check "certs create-ca exits 0, then 1 when the CA exists" test \
  "$(exit_of "$quire" certs create-ca --dir "$certs_dir/ca")$(exit_of "$quire" certs create-ca --dir "$certs_dir/ca")" = 01
# A node directory whose ca.crt is a symbolic link: refused before anything is written, and
# the file the link names is untouched.
mkdir -p "$certs_dir/ca/n2"
echo "precious" >"$certs_dir/precious"
ln -s "$certs_dir/precious" "$certs_dir/ca/n2/ca.crt"
check "certs create-node refuses a ca.crt that is a symbolic link (exit 1), writing nothing" bash -c \
  "test \"\$('$quire' certs create-node --dir '$certs_dir/ca' --name n2 --host 127.0.0.1 >/dev/null 2>&1; echo \$?)\" = 1 && test \"\$(cat '$certs_dir/precious')\" = precious && test ! -e '$certs_dir/ca/n2/node.key'"
rm -rf "$certs_dir"
echo "cli-checks: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
