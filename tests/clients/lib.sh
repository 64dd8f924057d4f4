# Shared by the client suites: a tiny test runner and the checks they assert with.
# A suite defines test_* functions and ends with `run_tests`; each test runs in a subshell with
# `set -e`, so the first failing command (or expect_*) fails it. Output of failed tests is shown, passed ones
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

# write_podman_conf FILE [ENGINE_LINE...]: podman's containers.conf for the test beds, which have no
# journald and no network for containers: k8s-file logs, no network, events to a file next to FILE.
write_podman_conf() {
  local file=$1
  shift
  {
    printf '[containers]\nlog_driver = "k8s-file"\nnetns = "none"\n'
    printf '[engine]\nevents_logger = "file"\nevents_logfile_path = "%s/events.log"\n' "$(dirname "$file")"
    (($#)) && printf '%s\n' "$@"
  } >"$file"
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
    # Not `out=$(...) || rc=$?`: inside an && or || list bash ignores set -e, also in the
    # subshell, and a test would go on past its first failing command. The ERR trap names the
    # command that failed (once, not again for each function it was in).
    out=$( (set -eE; trap 'st_=$?; [[ -n ${failed_:-} || $BASH_COMMAND == return* ]] || { failed_=1; echo "failed (exit $st_): $BASH_COMMAND"; }' ERR; "$t") 2>&1)
    rc=$?
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

# Checkpoint/restore: a workload whose state must survive a CRIU dump and restore. The shell keeps
# a random token and a counter in memory only, and reads one line per tick through fd 3 from a
# file of numbered lines, so the line it got is the fd's offset: it writes "<token> <count> <line>"
# to /tmp/c every 0.2 s. busybox httpd listens on 8080 (a listening TCP socket in the container's
# network namespace, in a second process). After a restore the token must be the same (a fresh
# start draws a new one), the count past the one before the checkpoint, and line == count (the fd
# kept its offset).
# shellcheck disable=SC2016
CKPT_WORKLOAD='seq 1 50000 >/tmp/lines; exec 3</tmp/lines
mkdir -p /srv; echo hello-from-checkpoint >/srv/hello.txt; httpd -f -p 8080 -h /srv &
token=$RANDOM$RANDOM$RANDOM i=0
while :; do i=$((i+1)); read -r l <&3; echo "$token $i $l" >/tmp/c.new; mv /tmp/c.new /tmp/c; usleep 200000; done'

# ckpt_status PID: "<token> <count> <line>" as the workload with host pid PID last wrote it
ckpt_status() { cat "/proc/$1/root/tmp/c"; }
# ckpt_count_past PID N: the workload's count is above N
ckpt_count_past() {
  local token n line
  read -r token n line <"/proc/$1/root/tmp/c" && ((n > $2))
}
# ckpt_http PID: fetches the workload's file from its listening socket, inside its network
# namespace (whose lo a new namespace has down, so it is brought up: a restored one keeps it up)
ckpt_http() {
  nsenter -t "$1" -n ip link set lo up
  nsenter -t "$1" -n wget -q -T 20 -O- http://127.0.0.1:8080/hello.txt
}
# ckpt_expect_continues PID BEFORE: the workload restored as PID goes on from BEFORE (a status
# read before the checkpoint): same token, counting past BEFORE's count, fd offset in step
ckpt_expect_continues() {
  local pid=$1 t0 n0 l0 t1 n1 l1
  read -r t0 n0 l0 <<<"$2"
  wait_for 120 ckpt_count_past "$pid" "$n0"
  read -r t1 n1 l1 < <(ckpt_status "$pid")
  expect_eq "in-memory token after restore (before: $2)" "$t0" "$t1"
  expect_eq "line read through the restored fd 3 at count $n1 (before: $2)" "$n1" "$l1"
  echo "restored: '$2' -> '$t1 $n1 $l1'"
}
