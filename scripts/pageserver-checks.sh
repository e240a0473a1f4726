#!/usr/bin/env bash
# End-to-end checks of the page server commands: start a server on port 0, write through
# the bench, kill -9 it, restart it and check the acknowledged records survived; the data
# directory lock; SIGTERM; usage errors; and `pl verify` on intact, torn and corrupted
# directories. Every wait is bounded and every server started here is killed on exit.
# Usage: scripts/pageserver-checks.sh PATH_TO_QUIRE
set -uo pipefail
quire="$1"
source "$(dirname "$0")/check-lib.sh"

data="$tmp/data"

# 1. Serve on port 0 and write through the bench.
start_server first "$data"
check "the server prints the port it bound" test -n "$port"
first_pid=$pid
bench_code=$(exit_of "$quire" bench pageserver --servers "127.0.0.1:$port" --records 2000 --size 4096 \
  --json "$tmp/bench.json")
check "the bench writes 2000 records (exit 0)" test "$bench_code" = 0
acked=$(json_field "$tmp/bench.json" acked 2>/dev/null || echo 0)
acked_durable=$(json_field "$tmp/bench.json" durable_lsn 2>/dev/null || echo 0)
check "the bench reports 2000 acked, durable_lsn 2000" test "$acked" = 2000 -a "$acked_durable" = 2000

# 2. kill -9, restart on the same directory: every acknowledged record is still there.
disown "$first_pid"  # so bash does not report the kill; its exit code is not needed
kill -9 "$first_pid"
wait_exit "$first_pid"
check "kill -9 ends the server" test "$code" != timeout
start_server second "$data"
check "the server restarts on the same directory" test -n "$port"
second_pid=$pid
"$quire" pl status --server "127.0.0.1:$port" --timeout-ms 5000 >"$tmp/status.json" 2>"$tmp/status.err"
check "pl status exits 0" test $? = 0
check "after kill -9 and restart, durable_lsn >= the acknowledged durable_lsn" python3 -c "
import json,sys
j=json.load(open('$tmp/status.json'))
keys=['last_lsn','durable_lsn','segments','sealed_count','term','records','bytes','damaged_ranges']
assert list(j)==keys, list(j)
assert j['durable_lsn'] >= $acked_durable and j['records'] >= $acked and j['damaged_ranges']==[], j
"

# 3. One process per data directory.
second_code=$(exit_of timeout 20 "$quire" pageserver --listen 127.0.0.1:0 --data "$data")
check "a second server on the same directory exits 1" test "$second_code" = 1
timeout 20 "$quire" pageserver --listen 127.0.0.1:0 --data "$data" 2>"$tmp/locked.err" >/dev/null
check "... naming the directory and the held lock" grep -q "data directory $data is in use by another process" "$tmp/locked.err"
busy_code=$(exit_of timeout 20 "$quire" pageserver --listen "127.0.0.1:$port" --data "$tmp/other")
check "a server on an address in use exits 1" test "$busy_code" = 1

# 4. SIGTERM stops it cleanly.
stop_server "$second_pid"
check "SIGTERM stops the server with exit 0" test "$code" = 0
check "a server that is gone: pl status exits 1" \
  test "$(exit_of "$quire" pl status --server "127.0.0.1:$port" --timeout-ms 2000)" = 1

# 5. Offline tools on the intact directory.
"$quire" pl verify --data "$data" >"$tmp/verify.out" 2>&1
check "pl verify on the intact directory exits 0" test $? = 0
# The writer's first request made the server persist its term: one TERM marker, counted apart.
check "... and counts every record" \
  grep -q "^totals: records=2000 segments=1 damaged_ranges=0 markers=1$" "$tmp/verify.out"
# The active segment's file runs on past its last record with the zeros the server writes
# ahead (docs/pagelog.md): neither a torn tail nor damage.
check "... and shows the zeros written ahead, not a torn tail" \
  grep -Eq "intact, zeros written ahead \[[0-9]+, [0-9]+\)$" "$tmp/verify.out"
"$quire" pl dump --data "$data" >"$tmp/dump.out" 2>/dev/null
check "pl dump prints one line per record and marker" test "$(wc -l <"$tmp/dump.out")" = 2001
check "... the TERM marker first" grep -q \
  '^segment=1 offset=32 type=TERM table=0 page=0 lsn=0 prev_lsn=0 base_lsn=0 backlink_lsn=0 term=1 payload_bytes=0 payload_crc32c=00000000$' \
  "$tmp/dump.out"
check "... with the record's fields and payload checksum" grep -Eq \
  '^segment=1 offset=104 type=LOG table=0 page=0 lsn=[0-9]+ prev_lsn=[0-9]+ base_lsn=0 backlink_lsn=0 term=1 payload_bytes=4096 payload_crc32c=[0-9a-f]{8}$' \
  "$tmp/dump.out"
check "pl dump --table filters" test "$("$quire" pl dump --data "$data" --table 9 2>/dev/null | wc -l)" = 0

# Where the newest segment's records end (the zeros written ahead start there).
records_end=$(sed -nE 's/.*zeros written ahead \[([0-9]+), [0-9]+\)$/\1/p' "$tmp/verify.out" | tail -1)

# 6. A torn tail on the newest segment is what a crash leaves: reported, not damage. The
# torn write lands where the next records go, over the zeros.
torn="$tmp/torn"
cp -r "$data" "$torn"
seg=$(ls "$torn"/segments/seg-* | tail -1)
head -c 100 /dev/urandom | dd of="$seg" bs=1 seek="$records_end" conv=notrunc status=none
"$quire" pl verify --data "$torn" >"$tmp/torn.out" 2>&1
check "pl verify with a torn tail on the newest segment exits 0" test $? = 0
check "... and reports the torn tail" grep -q "torn tail" "$tmp/torn.out"

# 7. A byte flipped in the middle of a segment is damage, and verify names the range.
bad="$tmp/bad"
cp -r "$data" "$bad"
seg=$(ls "$bad"/segments/seg-* | head -1)
flip=$((records_end / 2))  # inside a record, not in the zeros after them
python3 -c "
import sys
path, at = sys.argv[1], int(sys.argv[2])
with open(path, 'r+b') as f:
    f.seek(at); b = f.read(1); f.seek(at); f.write(bytes([b[0] ^ 0xff]))
" "$seg" "$flip"
"$quire" pl verify --data "$bad" >"$tmp/bad.out" 2>&1
check "pl verify on a corrupted segment exits 1" test $? = 1
check "... and names a damaged range holding the flipped byte" python3 -c "
import re,sys
out=open('$tmp/bad.out').read()
ranges=[(int(a),int(b)) for a,b in re.findall(r'\[(\d+), (\d+)\)', out)]
assert 'DAMAGED' in out and any(a <= $flip < b for a,b in ranges), out
"

# 7b. pl verify refuses a segment that is not a regular file (a FIFO would block a reader).
fifo_dir="$tmp/fifo"
mkdir -p "$fifo_dir/segments"
mkfifo "$fifo_dir/segments/$(basename "$seg")"
timeout 10 "$quire" pl verify --data "$fifo_dir" >"$tmp/fifo.out" 2>&1
fifo_code=$?
check "pl verify on a FIFO segment exits 1 (no hang)" test "$fifo_code" = 1
check "... saying it is a FIFO" grep -q "is a FIFO; a segment must be a regular file" "$tmp/fifo.out"

# 8. Usage errors exit 2.
check "pageserver with a malformed --listen exits 2" test "$(exit_of "$quire" pageserver --listen nope --data "$tmp/u")" = 2
check "pageserver with a port out of range exits 2" test "$(exit_of "$quire" pageserver --listen 127.0.0.1:70000 --data "$tmp/u")" = 2
check "pageserver without --data exits 2" test "$(exit_of "$quire" pageserver --listen 127.0.0.1:0)" = 2
check "pageserver with a malformed peer exits 2" \
  test "$(exit_of "$quire" pageserver --listen 127.0.0.1:0 --data "$tmp/u" --peers 127.0.0.1:1,bad)" = 2
check "pageserver with an unknown --log-level exits 2" \
  test "$(exit_of "$quire" pageserver --listen 127.0.0.1:0 --data "$tmp/u" --log-level loud)" = 2
check "an unknown flag exits 2" test "$(exit_of "$quire" pageserver --listen 127.0.0.1:0 --data "$tmp/u" --bogus)" = 2
check "pl status with a malformed --server exits 2" test "$(exit_of "$quire" pl status --server localhost)" = 2
check "pl verify without --data exits 2" test "$(exit_of "$quire" pl verify)" = 2
check "bench with neither --servers nor --data exits 2" \
  test "$(exit_of "$quire" bench pageserver --records 1 --size 1)" = 2
check "bench with both --servers and --data exits 2" \
  test "$(exit_of "$quire" bench pageserver --servers 127.0.0.1:1 --data "$tmp/u" --records 1 --size 1)" = 2
check "bench with --records 0 exits 2" \
  test "$(exit_of "$quire" bench pageserver --servers 127.0.0.1:1 --records 0 --size 1)" = 2

# 9. Start-up problems in the data directory are configuration errors: exit 1 naming the
# path (not 75, which a supervisor answers by restarting forever).
# startup_error NAME DIR PATTERN [WRAPPER...]: the server on DIR exits 1 with PATTERN on stderr.
startup_error() {
  local name="$1" dir="$2" pattern="$3" err="$tmp/startup-${1//[^a-zA-Z0-9]/_}.err"
  shift 3
  timeout 20 "$@" "$quire" pageserver --listen 127.0.0.1:0 --data "$dir" >/dev/null 2>"$err"
  local c=$?
  check "$name: exit 1 ($c)" test "$c" = 1
  check "$name: stderr names the path" grep -q -- "$pattern" "$err"
}
cfg="$tmp/cfg-file"
mkdir -p "$cfg"
touch "$cfg/segments"
startup_error "DIR/segments is a regular file" "$cfg" "$cfg/segments: a file is in the way"
cfg="$tmp/cfg-fifo"
mkdir -p "$cfg/segments"
mkfifo "$cfg/segments/seg-0000000000000001"
startup_error "a FIFO named like a segment" "$cfg" \
  "$cfg/segments/seg-0000000000000001: is a FIFO, not a regular file"
cfg="$tmp/cfg-dir"
mkdir -p "$cfg/segments/seg-0000000000000001"
startup_error "a directory named like a segment" "$cfg" \
  "$cfg/segments/seg-0000000000000001: is a directory"
timeout 10 "$quire" pl verify --data "$cfg" >"$tmp/dirseg.out" 2>&1
check "pl verify on a directory segment exits 1" test $? = 1
check "... saying it is a directory" grep -q "is a directory; a segment must be a regular file" "$tmp/dirseg.out"
# Unwritable: root writes anywhere, so the server runs without CAP_DAC_OVERRIDE here; LOCK
# stays writable (its owner may write it), the directory does not.
cfg="$tmp/cfg-ro"
mkdir -p "$cfg"
touch "$cfg/LOCK"
chmod 0555 "$cfg"
nodac=(setpriv --inh-caps=-dac_override,-dac_read_search --bounding-set=-dac_override,-dac_read_search)
if "${nodac[@]}" true 2>/dev/null; then
  startup_error "an unwritable data directory" "$cfg" "mkdir $cfg/segments: Permission denied" \
    "${nodac[@]}"
else
  echo "skipped: an unwritable data directory (setpriv cannot drop CAP_DAC_OVERRIDE here)"
fi
chmod 0755 "$cfg"
# An unwritable segments directory whose segment files are writable: recovery alone would
# pass, and the first seal would fail a serving server (exit 75, restarted forever). The
# store's probe at open finds it first.
cfg="$tmp/cfg-ro-segments"
cp -r "$data" "$cfg"
chmod 0555 "$cfg/segments"
if "${nodac[@]}" true 2>/dev/null; then
  startup_error "an unwritable segments directory" "$cfg" \
    "open $cfg/segments/.probe: Permission denied" "${nodac[@]}"
  check "an unwritable segments directory: no probe is left behind" test ! -e "$cfg/segments/.probe"
else
  echo "skipped: an unwritable segments directory (setpriv cannot drop CAP_DAC_OVERRIDE here)"
fi
chmod 0755 "$cfg/segments"
"$quire" pl verify --data "$cfg" >"$tmp/ro-segments.verify" 2>&1
check "an unwritable segments directory: the records are untouched (pl verify INTACT, 2000)" \
  grep -q "^totals: records=2000 segments=1 damaged_ranges=0 markers=1$" "$tmp/ro-segments.verify"

# 10. 5,000 segment files (written directly: one LOG record each, an unbroken chain), and
# the server starts under ulimit -n 1024: its sealed segments are opened on demand through
# a bounded descriptor cache.
many_segments=(python3 "$(dirname "$0")/many_segments.py")
limited="$tmp/quire-ulimit-1024"
printf '#!/bin/sh\nulimit -n 1024 || exit 99\nexec "%s" "$@"\n' "$quire" >"$limited"
chmod +x "$limited"
# open_fds PID: how many files the process holds open.
open_fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
# status_field FIELD: a field of pl status from the server on $port.
status_field() {
  timeout 10 "$quire" pl status --server "127.0.0.1:$port" --timeout-ms 5000 2>/dev/null |
    python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])" 2>/dev/null
}
# stop_and_verify NAME DIR RECORDS SEGMENTS: SIGTERM ends the server with exit 0, and pl verify
# (under the same descriptor limit) finds DIR intact with those totals.
stop_and_verify() {
  stop_server "$pid"
  check "$1: SIGTERM stops the server with exit 0 ($code)" test "$code" = 0
  "$limited" pl verify --data "$2" >"$tmp/$1.verify" 2>&1
  check "$1: pl verify says INTACT" grep -q "^INTACT$" "$tmp/$1.verify"
  check "$1: ... with records=$3 segments=$4" grep -q "^totals: records=$3 segments=$4 " "$tmp/$1.verify"
}
# start_limited CHECK NAME DIR: start_server NAME DIR under ulimit -n 1024, checked as CHECK.
start_limited() {
  local saved="$quire"
  quire="$limited"
  start_server "$2" "$3"
  quire="$saved"
  check "$1: the server starts under ulimit -n 1024" test -n "$port"
}
many="$tmp/many"
"${many_segments[@]}" write "$many" 5000 >/dev/null
check "5000 segment files are written" test "$(ls "$many/segments" | wc -l)" = 5000
start_limited "5000 segments" many "$many"
if [ -n "$port" ]; then
  check "5000 segments: pl status serves durable_lsn 5000" test "$(status_field durable_lsn)" = 5000
  check "5000 segments: ... and 5000 segments" test "$(status_field segments)" = 5000
  "${many_segments[@]}" read-log "127.0.0.1:$port" >"$tmp/many.read" 2>&1
  check "5000 segments: read_log returns all 5000 records (every segment read)" \
    grep -q "^records 5000$" "$tmp/many.read"
  fds=$(open_fds "$pid")
  check "5000 segments: the server holds under 100 files open ($fds)" test "$fds" -lt 100
  stop_and_verify "5000 segments" "$many" 5000 5000
fi

# 11. The seal flood: 2,000 seals under ulimit -n 1024, an append before every 4th, so 500 of
# them make a new segment file (a seal of an empty segment makes none). The server stays up
# and serves, holding a bounded number of files.
flood="$tmp/flood"
start_limited "seal flood" flood "$flood"
if [ -n "$port" ]; then
  timeout 60 "${many_segments[@]}" seals "127.0.0.1:$port" --seals 2000 --append-every 4 \
    >"$tmp/flood.out" 2>&1
  check "seal flood: 2000 seals and 500 appends answered OK" grep -q "^seals 2000 appends 500$" "$tmp/flood.out"
  check "seal flood: the server is alive" kill -0 "$pid"
  check "seal flood: pl status serves durable_lsn 500" test "$(status_field durable_lsn)" = 500
  check "seal flood: 501 segments (500 written, one empty active)" test "$(status_field segments)" = 501
  fds=$(open_fds "$pid")
  check "seal flood: the server holds under 100 files open ($fds)" test "$fds" -lt 100
  stop_and_verify "seal flood" "$flood" 500 501
fi

# A fatal signal leaves a backtrace in the process's stderr, and the process still dies of it
# (its supervisor and the chaos checkers see the same signal as before).
start_server crash "$tmp/crash-data"
crash_pid=$pid
disown "$crash_pid"
kill -SEGV "$crash_pid"
wait_exit "$crash_pid"
check "SIGSEGV ends the server" test "$code" != timeout
check "SIGSEGV: stderr says fatal signal 11 and lists frames" python3 -c "
import re,sys
t=open('$tmp/crash.err').read()
assert 'quire: fatal signal 11 (SIGSEGV); backtrace' in t, t[-500:]
assert len(re.findall(r'quire\(\+0x[0-9a-f]+\)', t)) >= 2, t[-500:]
assert 'quire: end of backtrace' in t, t[-500:]"

echo "pageserver-checks: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
