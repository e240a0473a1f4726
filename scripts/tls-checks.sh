#!/usr/bin/env bash
# End-to-end checks of mutual TLS between nodes: `quire certs` makes a CA and node
# certificates; three page servers run with TLS and --peers; the bench writes through a
# replication client over TLS and `pl status` reads over TLS; a plaintext client and a
# certificate from another CA are refused while the servers stay up, and connections
# stalled mid-handshake do not lock out a fresh client; a server killed with -9 and wiped
# catches up from its peers over TLS; a plaintext server on a non-loopback address is
# refused without --insecure. Every wait is bounded (the whole run well under
# 90 s) and every server started here is killed by pid on exit.
# Usage: scripts/tls-checks.sh PATH_TO_QUIRE
set -uo pipefail
quire="$1"
source "$(dirname "$0")/check-lib.sh"

certs="$tmp/certs"
# tls_of NAME: the --tls-* flags of node NAME's directory under $certs.
tls_of() { echo "--tls-ca $certs/$1/ca.crt --tls-cert $certs/$1/node.crt --tls-key $certs/$1/node.key"; }
# free_port: a port the kernel hands out for 127.0.0.1:0 (the servers need each other's
# ports before they start, for --peers).
free_port() {
  python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"
}
# start_server I: starts page server I (1..3) with TLS on 127.0.0.1:${ports[I]} and the
# other two as peers; sets $pid, and $up (1 once it printed its address within 20 s).
start_server() {
  local i="$1" peers=() j
  for j in 1 2 3; do [ "$j" != "$i" ] && peers+=("127.0.0.1:${ports[$j]}"); done
  # shellcheck disable=SC2046
  "$quire" pageserver --listen "127.0.0.1:${ports[$i]}" --data "$tmp/data$i" \
    --peers "$(IFS=,; echo "${peers[*]}")" $(tls_of "ps$i") --log "$tmp/ps$i.log" \
    >"$tmp/ps$i.out" 2>"$tmp/ps$i.err" &
  pid=$!
  disown "$pid"  # killed by pid below and on exit; its exit code is not needed
  pids+=("$pid")
  server_pid[$i]=$pid
  up=0
  for _ in $(seq 200); do
    grep -qs "^pageserver listening on 127.0.0.1:${ports[$i]} " "$tmp/ps$i.out" && up=1 && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
}
# status_of I [FLAGS...]: pl status of server I into $tmp/status$I.json; returns its exit code.
status_of() {
  local i="$1"
  shift
  timeout 10 "$quire" pl status --server "127.0.0.1:${ports[$i]}" --timeout-ms 3000 "$@" \
    >"$tmp/status$i.json" 2>"$tmp/status$i.err"
}

# 1. Certificates: a CA, a node certificate per server and one for the tools.
check "certs create-ca exits 0" test "$(exit_of "$quire" certs create-ca --dir "$certs")" = 0
for n in ps1 ps2 ps3 tool; do
  "$quire" certs create-node --dir "$certs" --name "$n" --host 127.0.0.1 --host localhost \
    >/dev/null 2>"$tmp/create-$n.err" || echo "create-node $n failed: $(cat "$tmp/create-$n.err")"
done
check "create-node writes ca.crt, node.crt and node.key in DIR/NAME" \
  test -s "$certs/ps1/ca.crt" -a -s "$certs/ps1/node.crt" -a -s "$certs/ps1/node.key"
check "private keys are mode 0600" \
  test "$(stat -c %a "$certs/ca.key" "$certs/ps1/node.key" "$certs/tool/node.key" | sort -u)" = 600
check "create-node refuses to overwrite without --overwrite (exit 1)" \
  test "$(exit_of "$quire" certs create-node --dir "$certs" --name ps1 --host 127.0.0.1)" = 1
check "create-node without a CA exits 1" \
  test "$(exit_of "$quire" certs create-node --dir "$tmp/nothing" --name x --host 127.0.0.1)" = 1
"$quire" certs create-ca --dir "$tmp/other" >/dev/null 2>&1
"$quire" certs create-node --dir "$tmp/other" --name rogue --host 127.0.0.1 >/dev/null 2>&1
check "a second CA signs a rogue node certificate" test -s "$tmp/other/rogue/node.crt"

# 2. Three page servers with TLS, each the others' peer.
declare -a ports server_pid
for i in 1 2 3; do ports[$i]=$(free_port); done
all_up=1
for i in 1 2 3; do
  start_server "$i"
  [ "$up" = 1 ] || all_up=0
done
check "three page servers start with TLS and --peers" test "$all_up" = 1
servers="127.0.0.1:${ports[1]},127.0.0.1:${ports[2]},127.0.0.1:${ports[3]}"

# 3. Writes through the replication client over TLS, then status over TLS.
# shellcheck disable=SC2046
bench_code=$(exit_of timeout 30 "$quire" bench pageserver --servers "$servers" --records 500 \
  --size 1024 --json "$tmp/bench.json" $(tls_of tool))
check "bench pageserver --tls-* writes 500 records to the 3 servers (exit 0)" test "$bench_code" = 0
check "... all acknowledged, over TLS" python3 -c "
import json; j=json.load(open('$tmp/bench.json')); assert j['acked']==500 and j['tls'] is True, j"
# shellcheck disable=SC2046
status_of 1 $(tls_of tool)
check "pl status --tls-* exits 0" test $? = 0
check "... and reports the written records" python3 -c "
import json; j=json.load(open('$tmp/status1.json')); assert j['last_lsn']>=500, j"

# An in-process server: it and the bench's client both speak TLS, or no write would land.
# shellcheck disable=SC2046
check "bench pageserver --data --tls-* writes through its in-process TLS server (exit 0)" \
  test "$(exit_of timeout 30 "$quire" bench pageserver --data "$tmp/local" --records 200 --size 512 \
    --json "$tmp/local.json" $(tls_of tool))" = 0 -a "$(json_field "$tmp/local.json" tls 2>/dev/null)" = True

# 4. What the servers refuse, staying up.
status_of 1
check "pl status without TLS against a TLS server exits 1" test $? = 1
status_of 2 --tls-ca "$tmp/other/ca.crt" --tls-cert "$tmp/other/rogue/node.crt" \
  --tls-key "$tmp/other/rogue/node.key"
check "pl status with a node certificate of another CA exits 1" test $? = 1
check "... and the server logs the failed handshake" grep -q "10105" "$tmp/ps2.log"
# shellcheck disable=SC2046
status_of 1 $(tls_of tool)
code1=$?
# shellcheck disable=SC2046
status_of 2 $(tls_of tool)
code2=$?
check "... and the servers still serve" test "$code1" = 0 -a "$code2" = 0

# Sockets stalled mid-handshake (silent, or half a record header) past the accept queue of
# 64: a fresh TLS client is still served, within pl status's 3 s although a handshake has
# 10 s, since each newcomer evicts the oldest pending handshake (logged as 10108).
python3 "$(dirname "$0")/hostile_peer.py" slots "127.0.0.1:${ports[1]}" --connections 150 \
  --seconds 20 >"$tmp/slots.out" 2>&1 &
slots_pid=$!
pids+=("$slots_pid")
for _ in $(seq 100); do
  grep -qs ready "$tmp/slots.out" && break
  kill -0 "$slots_pid" 2>/dev/null || break
  sleep 0.1
done
check "150 connections that never finish a handshake are open" grep -q ready "$tmp/slots.out"
started_ns=$(date +%s%N)
# shellcheck disable=SC2046
status_of 1 $(tls_of tool)
code1=$?
status_ms=$((($(date +%s%N) - started_ns) / 1000000))
echo "pl status over TLS behind stalled handshakes: exit $code1 in $status_ms ms"
check "... a fresh TLS client is still served (pl status exits 0, $status_ms ms)" test "$code1" = 0
check "... and the server logs evicting the oldest handshakes (10108)" \
  grep -q '"id":10108' "$tmp/ps1.log"
kill "$slots_pid" 2>/dev/null
wait "$slots_pid" 2>/dev/null

# 5. kill -9 a server, wipe its data, restart it: it catches up from its peers over TLS.
# shellcheck disable=SC2046
status_of 1 $(tls_of tool)
target=$(json_field "$tmp/status1.json" durable_lsn 2>/dev/null || echo 0)
kill -9 "${server_pid[3]}"
sleep 0.2
rm -rf "$tmp/data3"
start_server 3
check "the wiped server restarts with TLS" test "$up" = 1
caught=0
for _ in $(seq 100); do
  # shellcheck disable=SC2046
  if status_of 3 $(tls_of tool) &&
    [ "$(json_field "$tmp/status3.json" durable_lsn 2>/dev/null || echo 0)" -ge "$target" ]; then
    caught=1
    break
  fi
  sleep 0.2
done
check "... and catches up from its peers over TLS (durable_lsn reaches $target)" \
  test "$caught" = 1 -a "$target" -ge 500

# 6. Plaintext off loopback only when asked for; usage errors.
refused=$(timeout 10 "$quire" pageserver --listen 0.0.0.0:0 --data "$tmp/open" 2>&1 >/dev/null; echo "exit=$?")
check "pageserver --listen 0.0.0.0:0 without TLS or --insecure is refused (exit 2)" \
  bash -c "grep -q 'exit=2' <<<\"\$1\" && grep -q 'refusing plaintext' <<<\"\$1\"" _ "$refused"
check "... and creates no data directory" test ! -e "$tmp/open"
check "pageserver with --tls-ca alone exits 2" test "$(exit_of timeout 10 "$quire" pageserver \
  --listen 127.0.0.1:0 --data "$tmp/u" --tls-ca "$certs/ca.crt")" = 2
check "pl status with --tls-cert and --tls-key but no --tls-ca exits 2" \
  test "$(exit_of timeout 10 "$quire" pl status --server 127.0.0.1:1 \
    --tls-cert "$certs/tool/node.crt" --tls-key "$certs/tool/node.key")" = 2
check "pageserver with a missing TLS file exits 1" test "$(exit_of timeout 10 "$quire" pageserver \
  --listen 127.0.0.1:0 --data "$tmp/u" --tls-ca "$tmp/none.crt" --tls-cert "$certs/ps1/node.crt" \
  --tls-key "$certs/ps1/node.key")" = 1

echo "tls-checks: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
