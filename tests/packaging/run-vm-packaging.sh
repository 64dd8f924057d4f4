#!/usr/bin/env bash
# The Debian packages end to end (docs/packaging.md): `cpack -G DEB` in BUILD_DIR (configured with
# -DCMAKE_INSTALL_PREFIX=/usr and built), lintian on the four .deb files (no error or warning that is
# not overridden with its reason), then tests/packaging/vm-packaging.sh in the cgroup v2 VM, where
# dpkg -i installs them on a throwaway overlay of this host's root and the installed files run a
# container, the daemon and examples/agent.c.
# Usage: tests/packaging/run-vm-packaging.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(cd "${1:?usage: run-vm-packaging.sh BUILD_DIR}" && pwd)
t0=$(date +%s)
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
if [[ $prefix != /usr ]]; then
  echo "run-vm-packaging: $build is configured with CMAKE_INSTALL_PREFIX=$prefix; the packages need a build" \
    "configured with -DCMAKE_INSTALL_PREFIX=/usr (tests/run-all.sh --tier 2 makes build-deb)" >&2
  exit 2
fi
# The VM mounts fresh /tmp and /run: stage under /var/tmp.
stage=$(mktemp -d /var/tmp/bulkhead-vm-pkg.XXXXXX)
trap 'rm -rf "$stage"' EXIT

(cd "$build" && cpack -G DEB -B "$stage/cpack") >"$stage/cpack.log" 2>&1 || { cat "$stage/cpack.log"; exit 1; }
mkdir "$stage/debs"
mv "$stage"/cpack/*.deb "$stage/debs/"
echo "== cpack -G DEB: $(($(date +%s) - t0)) s"
for deb in "$stage"/debs/*.deb; do
  printf '%-36s %8d bytes, installed %6s KiB, Depends: %s\n' "${deb##*/}" "$(stat -c %s "$deb")" \
    "$(dpkg-deb -f "$deb" Installed-Size)" "$(dpkg-deb -f "$deb" Depends)"
done

# Every error or warning that is not overridden (with its reason, packaging/debian/*/lintian-overrides)
# fails; info tags are listed with their reasons in docs/packaging.md. Overridden tags are shown, so
# a reader sees every exception. The status comes from the E:/W: lines because lintian 2.116 also
# counts overridden tags for --fail-on once --show-overrides is given. lintian warns when it runs as
# root (these test beds do): that line is not a finding.
lintian --fail-on none --show-overrides "$stage"/debs/*.deb >"$stage/lintian.txt" 2>&1 ||
  { cat "$stage/lintian.txt"; echo "FAIL: lintian itself failed"; exit 1; }
grep -v '^running with root privileges' "$stage/lintian.txt" | grep -v '^N:' || true
if grep -q '^[EW]:' "$stage/lintian.txt"; then
  echo "FAIL: lintian reported errors or warnings that are not overridden"
  exit 1
fi
echo "== lintian: no error or warning beyond the overrides ($(grep -c '^O:' "$stage/lintian.txt" || true) overridden): $(($(date +%s) - t0)) s"

cp "$here/vm-packaging.sh" "$stage/"
cd "$stage"
rc=0
for attempt in 1 2; do
  rc=0
  "$repo/tests/vm/run-in-vm.sh" --force-vm --timeout "${BULKHEAD_VM_TIMEOUT:-900}" --mem 2G -- \
    bash "$stage/vm-packaging.sh" "$stage/debs" "$repo" || rc=$?
  [[ $rc == 125 && $attempt == 1 ]] || break
  echo "run-vm-packaging: the VM failed (125); retrying once" >&2
done
echo "== packaging test: exit $rc after $(($(date +%s) - t0)) s"
exit "$rc"
