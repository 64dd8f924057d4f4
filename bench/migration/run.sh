#!/usr/bin/env bash
# Migration benchmark (bench/migration/README.md): downtime_ms and bytes of `bulkheadctl migrate
# --cold` and `--live` for an idle container and one dirtying 256 MiB of memory, on the multi-host
# bed (tests/multihost/lib.sh) in the cgroup v2 VM of tests/vm (QEMU TCG). Never an assertion.
#
#   bash bench/migration/run.sh [BUILD_DIR] [--runs N] [--cases "CASE:MODE ..."]
#   (default: build, 3 runs per case, all of idle:cold idle:live dirty256:cold dirty256:stopcopy
#   dirty256:live; stopcopy = --live --precopy-rounds 0;
#   the anchors run when an idle case does)
#
# Uses the bulkheadd, bulkheadctl and bulkhead-monitor of BUILD_DIR as they are (build them first).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$repo/build runs=3 cases="idle:cold idle:live dirty256:cold dirty256:stopcopy dirty256:live"
while (($#)); do
  case $1 in
  --runs) runs=$2; shift ;;
  --cases) cases=$2; shift ;;
  *) build=$1 ;;
  esac
  shift
done
build=$(cd "$build" && pwd)
# The runc anchor (vm-bench.sh) needs runc; Debian's package, as the clients suite installs it.
command -v runc >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runc >/dev/null
# shellcheck source=../multihost-stage.sh
source "$repo/bench/multihost-stage.sh"
bench_stage migration "$build" "$here"
# Case (b)'s process, static: the template is busybox.
gcc -O2 -static -Wall -Wextra -Werror -o "$stage/dirtier" "$repo/tests/multihost/dirtier.c"
cd "$stage"
"$repo/tests/vm/run-in-vm.sh" --timeout "${BULKHEAD_VM_TIMEOUT:-3000}" --mem 6G -- \
  bash "$stage/vm-bench.sh" "$stage" "$stage/make-busybox-rootfs.sh" "$runs" "$cases"
