# Shared by the client suites: a tiny test runner and the checks they assert with.
# A suite defines test_* functions and ends with `run_tests`; each test runs in a subshell with
# `set -e`, so the first failing command fails it. Output of failed tests is shown, passed ones
# print one line. Exits 1 if any test failed.
set -uo pipefail

: "${BULKHEAD:?BULKHEAD must name the bulkhead binary under test}"
suite=${SUITE:-$(basename "$0" .sh)}
passed=0 failed=0 failures=()
declare -a cleanups=()

IMAGE=localhost/bulkhead-busybox:latest # what make-image.py names the image in IMAGE_TAR

log() { printf '[%s] %s\n' "$suite" "$*" >&2; }
die() { log "setup failed: $*"; exit 2; }

require_tools() {
  : "${IMAGE_TAR:?IMAGE_TAR must name the image archive (make-image.py)}"
  local t
  for t in "$@"; do command -v "$t" >/dev/null || die "$t is not installed"; done
}

# W: a private tmpfs under /var/tmp for the suite's daemon, its state and every container.
make_work_dir() {
  W=$(mktemp -d "/var/tmp/bulkhead-$suite.XXXXXX")
  mount -t tmpfs -o mode=0700 "bulkhead-$suite" "$W" || die "tmpfs on $W"
}
remove_work_dir() {
  umount -R "$W" 2>/dev/null || umount -l "$W"
  rmdir "$W" 2>/dev/null
}

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
  [[ $2 == "$3" ]] && return 0
  printf 'expected %s to be %q, got %q\n' "$1" "$2" "$3"
  return 1
}
# expect_match WHAT REGEX ACTUAL
expect_match() {
  [[ $3 =~ $2 ]] && return 0
  printf 'expected %s to match /%s/, got %q\n' "$1" "$2" "$3"
  return 1
}
# expect_status WANT CMD...: runs CMD, compares its exit status
expect_status() {
  local want=$1 rc=0
  shift
  "$@" || rc=$?
  expect_eq "exit status of '$*'" "$want" "$rc"
}
# wait_for SECONDS CMD...: polls CMD every 0.2 s (the clients' own state changes are
# asynchronous: a task's status after kill, a daemon's socket)
wait_for() {
  local deadline=$(($(date +%s) + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    (($(date +%s) < deadline)) || { echo "timed out waiting for: $*"; return 1; }
    sleep 0.2
  done
}

# Containers must never leak: no bulkhead state, cgroup or process left for ROOT.
expect_no_leaks() {
  local root=$1 cgroup_parent=$2 ids
  ids=$("$BULKHEAD" --root "$root" list -q 2>/dev/null || true)
  expect_eq "containers left in $root" "" "$ids"
  if [[ -d $cgroup_parent ]]; then
    local left
    left=$(find "$cgroup_parent" -mindepth 1 -type d 2>/dev/null | tr '\n' ' ')
    expect_eq "cgroups left under $cgroup_parent" "" "$left"
  fi
}

run_tests() {
  local t out rc start
  for t in $(declare -F | awk '{print $3}' | grep '^test_' | sort -V); do
    [[ -n ${TEST_FILTER:-} && ! $t =~ $TEST_FILTER ]] && continue
    start=$(date +%s)
    out=$( (set -e; "$t") 2>&1) && rc=0 || rc=$?
    if ((rc == 0)); then
      passed=$((passed + 1))
      printf '[%s] ok   %s (%s s)\n' "$suite" "$t" $(($(date +%s) - start))
    else
      failed=$((failed + 1))
      failures+=("$t")
      printf '[%s] FAIL %s (exit %s, %s s)\n%s\n' "$suite" "$t" "$rc" $(($(date +%s) - start)) "$(sed 's/^/    /' <<<"$out")"
    fi
  done
  printf '[%s] %d passed, %d failed%s\n' "$suite" "$passed" "$failed" \
    "$( ((failed)) && printf ': %s' "${failures[*]}")"
  ((failed == 0))
}
