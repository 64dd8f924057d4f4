#!/usr/bin/env bash
# run-client-tests.sh - the real-client suites (containerd's runc shim and podman/conmon, both
# from Debian's packages) against a built bulkhead, inside the cgroup v2 VM of tests/vm.
#
# Usage: tests/clients/run-client-tests.sh [BUILD_DIR] [-- SUITE...]
#   BUILD_DIR defaults to $BULKHEAD_BUILD_DIR, then <repo>/build. SUITE: containerd, podman,
#   podman-rootless (default all three). TEST_FILTER=REGEX runs only the matching test_* functions.
#   CLIENT_RUNTIME=/usr/sbin/runc runs the suites against Debian's runc instead, to tell a
#   client's or the kernel's limit from a bulkhead bug.
# Installs containerd, podman (with conmon), criu, wget and jq when missing. Exits 0 when every suite
# passed, 1 when a test failed, 124/125 when the VM timed out/failed.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${BULKHEAD_BUILD_DIR:-$repo/build}
if (($#)) && [[ $1 != -- ]]; then build=$1; shift; fi
[[ ${1:-} == -- ]] && shift
suites=("$@")
((${#suites[@]})) || suites=(containerd podman podman-rootless)
build=$(cd "$build" && pwd)
[[ -x $build/cli/bulkhead ]] || { echo "run-client-tests: $build/cli/bulkhead not built" >&2; exit 125; }

missing=()
for p in containerd podman conmon criu jq bsdutils python3 wget iproute2 uidmap; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "run-client-tests: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Debian starts the packaged daemon; the suites start their own, on their own sockets.
systemctl disable --now containerd >/dev/null 2>&1 || true

# The VM sees a fresh /tmp and /run: stage the runtime, the suites and the image under /var/tmp.
stage=$(mktemp -d /var/tmp/bulkhead-clients.XXXXXX)
trap 'rm -rf "$stage"' EXIT
cp "$build/cli/bulkhead" "$stage/bulkhead"
cp "$here"/lib.sh "$here"/*-suite.sh "$stage/"
/usr/bin/python3 "$here/make-image.py" "$stage/image.tar" >/dev/null
cat >"$stage/all.sh" <<'SH'
cd "$(dirname "$0")"
export BULKHEAD=${CLIENT_RUNTIME:-$PWD/bulkhead} IMAGE_TAR=$PWD/image.tar
rc=0
for s in "$@"; do bash "$s-suite.sh" || rc=1; done
exit $rc
SH

# run-in-vm.sh refuses a cwd under /tmp or /run (CI may clone there): run from the stage.
cd "$stage"
start=$(date +%s)
rc=0
for attempt in 1 2; do # 125 is the VM failing, never a test result: boot once more
  rc=0
  "$repo/tests/vm/run-in-vm.sh" --timeout "${BULKHEAD_VM_TIMEOUT:-1200}" -e "TEST_FILTER=${TEST_FILTER:-}" \
    -e "CLIENT_RUNTIME=${CLIENT_RUNTIME:-}" -- \
    bash "$stage/all.sh" "${suites[@]}" || rc=$?
  [[ $rc == 125 && $attempt == 1 ]] || break
  echo "run-client-tests: the VM failed (125); retrying once" >&2
done
echo "run-client-tests: exit $rc after $(($(date +%s) - start)) s" >&2
exit "$rc"
