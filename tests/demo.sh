#!/usr/bin/env bash
# The README's first command: install dependencies, build bulkhead, and run a demo container
# from a busybox-static rootfs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBULKHEAD_TESTS=OFF >/dev/null
ninja -C build bulkhead_cli >/dev/null
cmake --install build --prefix /usr/local >/dev/null
echo "installed: $(command -v bulkhead)"
bulkhead --version

bundle=$(mktemp -d /tmp/bulkhead-demo.XXXXXX)
trap 'bulkhead delete --force demo >/dev/null 2>&1 || true; rm -rf "$bundle"' EXIT
mkdir -p "$bundle/rootfs/bin"
cp /usr/bin/busybox "$bundle/rootfs/bin/"
for applet in sh echo cat ls id hostname ps sleep uname; do ln -s busybox "$bundle/rootfs/bin/$applet"; done
bulkhead spec --bundle "$bundle"
jq '.process.terminal = false | .hostname = "demo"
    | .process.args = ["sh", "-c", "echo \"hello from pid $$ in $(hostname)\"; id; ps; ls /dev"]' \
  "$bundle/config.json" >"$bundle/config.tmp" && mv "$bundle/config.tmp" "$bundle/config.json"

echo "+ bulkhead run --bundle $bundle demo"
bulkhead run --bundle "$bundle" demo
echo "+ bulkhead create / state / start / delete"
jq '.process.args = ["sleep", "30"]' "$bundle/config.json" >"$bundle/config.tmp" && mv "$bundle/config.tmp" "$bundle/config.json"
bulkhead create --bundle "$bundle" demo
bulkhead state demo
bulkhead start demo
bulkhead list
bulkhead delete --force demo
bulkhead list
