#!/usr/bin/env bash
# Hostile peers against a real page server (issue 12 items 1-5, 7 and the log flood, and
# issue 13's fence as item 8): a
# server on 127.0.0.1:0 gets 2000 records of 4096 bytes through the bench, then each attack
# from scripts/hostile_peer.py (raw sockets). Items 1-3 are a hostile writer at the current
# term (the chain attack, out of bounds and in bounds, abandon and retention below the commit
# point and checkpoint, huge and mismatched terms, and a restart). After each attack: the server is alive, a fresh
# client is served (`pl status` exits 0 within a few seconds) and its durable_lsn has not
# moved (but for the records item 1's writers legitimately stored); during the memory attacks
# its peak RSS (VmRSS, sampled every 50 ms) stays under RSS_BOUND_KB. At the end the server
# is stopped and `pl verify` finds the directory INTACT with every acknowledged record.
# Bounded in time (about 30 s); every process started here is killed on exit.
# Usage: scripts/hostile-peer-checks.sh PATH_TO_QUIRE
set -uo pipefail
quire="$1"
here="$(dirname "$0")"
source "$here/check-lib.sh"
check_verbose=1  # one line for every check, passed or not
peer=("python3" "$here/hostile_peer.py")

# Peak RSS allowed during the memory attacks: the default TcpNet budgets (128 MiB received,
# 128 MiB queued for sending) plus the server's own working set, with room to spare.
RSS_BOUND_KB=$((300 * 1024))
# The log may grow at most this much per second of flood (one line per kind per second).
LOG_BOUND_BYTES_PER_S=20000


data="$tmp/data"
start_server server "$data"
check "the server starts and prints its port" test -n "$port"
[ -n "$port" ] || { echo "hostile-peer-checks: $pass passed, $fail failed"; exit 1; }
addr="127.0.0.1:$port"

bench_code=$(exit_of timeout 30 "$quire" bench pageserver --servers "$addr" --records 2000 --size 4096)
check "the bench writes 2000 records first" test "$bench_code" = 0

# durable_lsn as pl status reports it, within 5 s; empty when it cannot be reached.
durable_lsn() {
  timeout 10 "$quire" pl status --server "$addr" --timeout-ms 5000 2>/dev/null |
    python3 -c "import json,sys; print(json.load(sys.stdin)['durable_lsn'])" 2>/dev/null
}
durable_before=$(durable_lsn)
check "pl status reports durable_lsn 2000 before the attacks" test "$durable_before" = 2000

# after_attack NAME: the server is alive, and a fresh client is served within 5 s with the
# durable_lsn unchanged.
after_attack() {
  check "$1: the server is alive" kill -0 "$pid"
  local start end lsn
  start=$(date +%s%N)
  lsn=$(durable_lsn)
  end=$(date +%s%N)
  check "$1: a fresh client is served within 5 s ($(((end - start) / 1000000)) ms)" \
    test -n "$lsn" -a $(((end - start) / 1000000)) -lt 5000
  check "$1: durable_lsn is unchanged ($lsn)" test "$lsn" = "$durable_before"
}

# writer_attack NAME ATTACK ARGS...: a hostile-writer attack from hostile_peer.py defended.
writer_attack() {
  local name="$1" attack="$2"
  shift 2
  timeout 30 "${peer[@]}" "$attack" "$addr" "$@" >"$tmp/$attack.out" 2>&1
  local code=$?
  sed "s/^/  $attack: /" "$tmp/$attack.out"
  check "$name" test "$code" = 0
}
term=$(timeout 10 "$quire" pl status --server "$addr" --timeout-ms 5000 2>/dev/null |
  python3 -c "import json,sys; print(json.load(sys.stdin)['term'])" 2>/dev/null)
check "pl status reports the writer's term ($term)" test -n "$term"
term=${term:-1}

# Item 1: LOG 2^64-1 chained after the last record is refused, and the writer's next two
# records are refused or stored, never answered OK and lost. They carry a commit point.
writer_attack "item 1: the chain attack is refused and nothing is OK-but-lost" chain \
  --term "$term" --last "$durable_before"
expected=$(sed -n 's/^durable_lsn_expected \([0-9]*\)$/\1/p' "$tmp/chain.out")
check "item 1: the writer's records were stored ($expected)" test "${expected:-0}" = 2002
records_acked=$((2000 + ${expected:-2000} - durable_before))  # records answered OK so far
durable_before=${expected:-$durable_before}
after_attack "item 1"

# Item 1 in bounds (chainjump): LOG L+1000 naming L is stored, so the chain jumps; the writer's
# L+1 and L+2, chained normally, are records the chain skips: Older, never OK. Every record
# answered OK is served (scan; read_log every LOG record of them), and pl verify (offline,
# beside the live server) finds the directory INTACT with each of them.
jump=$((durable_before + 1000))
writer_attack "item 1 (chainjump): $jump after $durable_before is stored, the skipped two are Older, nothing OK is lost" \
  chainjump --term "$term" --last "$durable_before"
expected=$(sed -n 's/^durable_lsn_expected \([0-9]*\)$/\1/p' "$tmp/chainjump.out")
check "item 1 (chainjump): the chain reaches $jump ($expected)" test "${expected:-0}" = "$jump"
[ "${expected:-0}" = "$jump" ] && records_acked=$((records_acked + 1))
durable_before=${expected:-$durable_before}
"$quire" pl verify --data "$data" >"$tmp/chainjump.verify" 2>&1
check "item 1 (chainjump): pl verify says INTACT" grep -q "^INTACT$" "$tmp/chainjump.verify"
check "item 1 (chainjump): ... with every acknowledged record ($records_acked)" \
  grep -q "^totals: records=$records_acked " "$tmp/chainjump.verify"
after_attack "item 1 (chainjump)"

# Item 2: abandon below the commit point, retention past the newest checkpoint (none).
writer_attack "item 2: abandon_after(0) at the current term is refused, every record stays" \
  abandon --term "$term"
after_attack "item 2 (abandon)"
writer_attack "item 2: set_retention(2^64-1), (2^63) and past the checkpoint are refused" \
  retention --term "$term" --last "$durable_before"
after_attack "item 2 (retention)"

# Item 3: terms at or above 2^63, and a header term above the request's, are refused;
# after a restart the writer at its term still writes.
writer_attack "item 3: appends at term 2^64-1 and 2^63 are refused" bigterm --last "$durable_before"
writer_attack "item 3: a record whose header term is above the request's is refused" headerterm \
  --term "$term" --last "$durable_before"
writer_attack "item 3: commit hints out of bounds are refused; one past the chain stores nothing" \
  commithint --term "$term" --last "$durable_before"
after_attack "item 3"
kill -TERM "$pid"
wait "$pid" 2>/dev/null
start_server server-restarted "$data"
check "item 3: the server restarts" test -n "$port"
addr="127.0.0.1:$port"
restarted_term=$(timeout 10 "$quire" pl status --server "$addr" --timeout-ms 5000 2>/dev/null |
  python3 -c "import json,sys; print(json.load(sys.stdin)['term'])" 2>/dev/null)
check "item 3: after a restart the term is still $term ($restarted_term)" test "$restarted_term" = "$term"
writer_attack "item 3: after a restart the writer at term $term still writes" write \
  --term "$term" --last "$durable_before"
durable_before=$((durable_before + 1))
records_acked=$((records_acked + 1))
after_attack "item 3 (restarted)"

# peak_rss FILE: the peak_rss_kb the attack printed, else a figure over every bound.
peak_rss() { sed -n 's/^peak_rss_kb \([0-9]*\)$/\1/p' "$1" | grep . || echo 999999999; }

# Item 4: 16 connections announce 64 MiB frames and send their bodies, never finishing.
timeout 20 "${peer[@]}" bigframes "$addr" --pid "$pid" --connections 16 --seconds 4 \
  >"$tmp/bigframes.out" 2>&1
rss=$(peak_rss "$tmp/bigframes.out")
echo "item 4 (64 MiB frame headers): peak RSS $((rss / 1024)) MB"
check "item 4: peak RSS under $((RSS_BOUND_KB / 1024)) MB ($((rss / 1024)) MB)" \
  test "$rss" -lt "$RSS_BOUND_KB"
after_attack "item 4"

# Item 5: 2 connections send 40 read_log requests each (8 MiB responses) and never read.
timeout 20 "${peer[@]}" unread "$addr" --pid "$pid" --connections 2 --requests 40 --seconds 4 \
  >"$tmp/unread.out" 2>&1
rss=$(peak_rss "$tmp/unread.out")
echo "item 5 (unread responses): peak RSS $((rss / 1024)) MB"
check "item 5: peak RSS under $((RSS_BOUND_KB / 1024)) MB ($((rss / 1024)) MB)" \
  test "$rss" -lt "$RSS_BOUND_KB"
after_attack "item 5"

# Item 7: 300 idle and half-sent connections, held while a fresh client asks for status.
"${peer[@]}" slots "$addr" --connections 300 --seconds 15 >"$tmp/slots.out" 2>&1 &
slots_pid=$!
pids+=("$slots_pid")
for _ in $(seq 100); do
  grep -q ready "$tmp/slots.out" && break
  kill -0 "$slots_pid" 2>/dev/null || break
  sleep 0.1
done
check "item 7: 300 idle and half-sent connections are open" grep -q ready "$tmp/slots.out"
after_attack "item 7 (slots held)"
kill "$slots_pid" 2>/dev/null
wait "$slots_pid" 2>/dev/null

# The log flood: bad connections for 3 s; the log grows by a bounded rate.
log_before=$(stat -c %s "$tmp/server-restarted.log")
timeout 20 "${peer[@]}" flood "$addr" --seconds 3 >"$tmp/flood.out" 2>&1
log_growth=$(($(stat -c %s "$tmp/server-restarted.log") - log_before))
flood_count=$(sed -n 's/^connections \([0-9]*\)$/\1/p' "$tmp/flood.out")
echo "log flood: ${flood_count:-?} bad connections in 3 s grew the log by $log_growth bytes"
check "log flood: ${flood_count:-0} bad connections were made" test "${flood_count:-0}" -gt 100
check "log flood: the log grew under $((3 * LOG_BOUND_BYTES_PER_S)) bytes ($log_growth)" \
  test "$log_growth" -lt $((3 * LOG_BOUND_BYTES_PER_S))
check "log flood: the lines count what they suppressed" grep -q '"suppressed":[1-9]' "$tmp/server-restarted.log"
after_attack "log flood"

# Item 8 (issue 13, fencing): a new writer of the next term fences the server and learns
# its durable_lsn; fences below it, at 2^63 and 2^64-1 are refused. After a restart the
# term is still fenced: the old writer's append is Fenced.
new_term=$((term + 1))
writer_attack "item 8: fence($new_term) answers the status; lower and huge terms are refused" \
  fence --term "$new_term" --last "$durable_before"
after_attack "item 8 (fence)"
stop_server "$pid"
check "item 8: SIGTERM stops the server with exit 0" test "$code" = 0
start_server server-fenced "$data"
check "item 8: the server restarts" test -n "$port"
addr="127.0.0.1:$port"
fenced_term=$(timeout 10 "$quire" pl status --server "$addr" --timeout-ms 5000 2>/dev/null |
  python3 -c "import json,sys; print(json.load(sys.stdin)['term'])" 2>/dev/null)
check "item 8: after a restart the term is still $new_term ($fenced_term)" \
  test "$fenced_term" = "$new_term"
writer_attack "item 8: after a restart the old writer at term $term is Fenced" fenced \
  --term "$term" --last "$durable_before"
after_attack "item 8 (restarted)"

# Everything acknowledged is still there.
stop_server "$pid"
check "SIGTERM stops the server with exit 0" test "$code" = 0
"$quire" pl verify --data "$data" >"$tmp/verify.out" 2>&1
check "pl verify finds the directory INTACT" grep -q "^INTACT$" "$tmp/verify.out"
check "... with every acknowledged record ($records_acked)" \
  grep -q "^totals: records=$records_acked " "$tmp/verify.out"
# One TERM marker for the writer's term (its first request raised it), one for the fence.
check "... and the two TERM markers counted apart" grep -q "^totals: .* markers=2$" "$tmp/verify.out"
"$quire" pl dump --data "$data" >"$tmp/dump.out" 2>&1
check "pl dump shows the TERM marker of term $new_term" \
  grep -q "type=TERM .* term=$new_term " "$tmp/dump.out"

echo "hostile-peer-checks: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
