#!/usr/bin/env bash
# A Debian template container boots systemd under real cgroup v2 (issue 11 items 4 and 8): runs
# tests/daemon/vm-systemd.sh in the cgroup v2 VM with the binaries of BUILD_DIR and a Debian bookworm
# rootfs debootstrap'd on the host (the VM has no network) and cached between runs as a tarball in
# /var/cache/bulkhead-test/debian-bookworm/rootfs.tar (BULKHEAD_TEST_CACHE to move it; deleting it
# or changing $includes below makes a fresh one).
# Where the mirror is not reachable and nothing is cached, prints "SKIP: <reason>" and exits 0.
# Usage: tests/daemon/run-vm-systemd.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd)
suite=bookworm
cache=${BULKHEAD_TEST_CACHE:-/var/cache/bulkhead-test}/debian-$suite
# The same packages as `bulkheadctl template create --debootstrap` (storage/debootstrap.cpp): minbase
# has no init, so systemd-sysv (/sbin/init -> systemd) and dbus are added. A change here refreshes the cache.
includes=systemd-sysv,dbus
stamp="variant=minbase include=$includes no-etc-hostname"

mirror=${BULKHEAD_TEST_MIRROR:-}
if [[ -z $mirror ]]; then
  mirror=$(sed -n 's/^URIs:[[:space:]]*\(https\?:[^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  [[ -n $mirror ]] || mirror=$(awk '$1 == "deb" && $2 ~ /^https?:/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  [[ -n $mirror ]] || mirror=http://deb.debian.org/debian
fi

t_host=$(date +%s)
if [[ ! -f $cache/rootfs.tar || $(cat "$cache/stamp" 2>/dev/null) != "$stamp" ]]; then
  if ! curl -sfI --max-time 15 "$mirror/dists/$suite/Release" >/dev/null; then
    echo "SKIP: the Debian mirror $mirror is not reachable and no $suite rootfs is cached in $cache"
    exit 0
  fi
  command -v debootstrap >/dev/null || { echo "SKIP: debootstrap is not installed (apt-get install debootstrap)"; exit 0; }
  echo "run-vm-systemd: debootstrap $suite from $mirror into $cache (a few minutes)"
  mkdir -p "$(dirname "$cache")"
  new=$(mktemp -d "$cache.new.XXXXXX")
  trap 'rm -rf "$new"' EXIT
  debootstrap --variant=minbase --include="$includes" "$suite" "$new/rootfs" "$mirror" >"$new/debootstrap.log" 2>&1 ||
    { tail -20 "$new/debootstrap.log" >&2; echo "run-vm-systemd: debootstrap failed" >&2; exit 1; }
  # apt's package lists are not needed to boot; device nodes belong to the container's /dev; the
  # host's /etc/hostname (copied by debootstrap) goes, as in the store's debootstrap.
  rm -rf "$new/rootfs/var/lib/apt/lists/"* "$new/rootfs/var/cache/apt/"*.bin "$new/rootfs/etc/hostname"
  find "$new/rootfs/dev" -mindepth 1 \( -type b -o -type c \) -delete
  # One tarball, not the directory: importing 8,000 files one by one over the VM's 9p takes minutes
  # under TCG, reading one file takes seconds.
  tar -C "$new/rootfs" --numeric-owner -cf "$new/rootfs.tar" .
  rm -rf "$new/rootfs"
  echo "$stamp" >"$new/stamp"
  rm -rf "$cache"
  mv "$new" "$cache"
  trap - EXIT
fi
t_host=$(($(date +%s) - t_host))
echo "run-vm-systemd: host preparation (debootstrap cache) took $t_host s"

# The VM mounts fresh /tmp and /run: stage binaries and scripts under /var/tmp (as run-vm-scenario.sh).
stage=$(mktemp -d /var/tmp/bulkhead-vm-systemd.XXXXXX)
trap 'rm -rf "$stage"' EXIT
cp "$build/cli/bulkheadd" "$build/cli/bulkheadctl" "$build/cli/bulkhead-monitor" "$stage/"
cp "$here/vm-systemd.sh" "$stage/"
cd "$stage"
t_vm=$(date +%s)
rc=0
for attempt in 1 2; do
  rc=0
  "$repo/tests/vm/run-in-vm.sh" --timeout "${BULKHEAD_VM_TIMEOUT:-1800}" --mem 2G -- \
    bash "$stage/vm-systemd.sh" "$stage" "$cache/rootfs.tar" || rc=$?
  [[ $rc == 125 && $attempt == 1 ]] || break
  echo "run-vm-systemd: the VM failed (125); retrying once" >&2
done
echo "run-vm-systemd: VM run took $(($(date +%s) - t_vm)) s (exit $rc)"
exit "$rc"
