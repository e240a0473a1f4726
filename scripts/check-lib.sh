# Shared by the check scripts (sourced): counts passes and failures of named checks.
pass=0
fail=0
check() {  # check NAME CONDITION...
  local name="$1"
  shift
  if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $name"; fi
}
# The exit code of a command, its output discarded.
exit_of() { "$@" >/dev/null 2>&1; echo $?; }
