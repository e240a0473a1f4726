# Shared by the check scripts (sourced): counts passes and failures of named checks.
pass=0
fail=0
check_verbose=0  # 1: print "ok: NAME" for passing checks too
check() {  # check NAME CONDITION...
  local name="$1"
  shift
  if "$@"; then
    pass=$((pass + 1))
    [ "$check_verbose" = 1 ] && echo "ok: $name"
  else
    fail=$((fail + 1))
    echo "FAIL: $name"
  fi
  return 0
}
# The exit code of a command, its output discarded.
exit_of() { "$@" >/dev/null 2>&1; echo $?; }
# A field of a JSON file: json_field FILE KEY.
json_field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
# A scratch directory in $tmp, and $pids: every process a script starts goes into pids, and
# on exit each is killed by pid and the directory removed.
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
# start_server NAME DIR: starts `$quire pageserver` on 127.0.0.1:0 in the background; sets $pid and
# $port (empty when it did not print its address within 20 s).
start_server() {
  local name="$1" dir="$2"
  "$quire" pageserver --listen 127.0.0.1:0 --data "$dir" --log "$tmp/$name.log" \
    >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pid=$!
  pids+=("$pid")
  port=""
  for _ in $(seq 200); do
    port=$(sed -n 's/^pageserver listening on 127\.0\.0\.1:\([0-9][0-9]*\) data .*/\1/p' "$tmp/$name.out")
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
}

# wait_exit PID: waits up to 10 s for PID to end; sets code to its exit status, or
# "timeout" when it is still running (127 for a disowned process).
wait_exit() {
  local p="$1"
  code=timeout
  for _ in $(seq 100); do
    if ! kill -0 "$p" 2>/dev/null; then
      wait "$p" 2>/dev/null
      code=$?
      return
    fi
    sleep 0.1
  done
}

# stop_server PID: SIGTERM, then wait_exit.
stop_server() {
  kill -TERM "$1" 2>/dev/null
  wait_exit "$1"
}
