#!/usr/bin/env bash
# The README's first command: install dependencies, build and install bulkhead, run a demo OCI
# container from a busybox-static rootfs, then the hosting face: bulkheadd + bulkheadctl with a
# busybox system-container template, a daemon SIGKILL that leaves the container running, a snapshot
# restored, an export imported under a new name.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBULKHEAD_TESTS=OFF >/dev/null
ninja -C build >/dev/null
cmake --install build --prefix /usr/local >/dev/null
echo "installed: $(command -v bulkhead)"
echo "installed: $(command -v bulkheadd) $(command -v bulkheadctl)"
bulkhead --version

bundle=$(mktemp -d /tmp/bulkhead-demo.XXXXXX)
host=$(mktemp -d /var/tmp/bulkhead-demo-host.XXXXXX)
# Containers are unprivileged: their root (a uid of their own range) must reach its rootfs below here.
chmod 711 "$host"
daemon=""
cleanup() {
  bulkhead delete --force demo >/dev/null 2>&1 || true
  if [[ -n $daemon ]]; then
    bulkheadctl --socket "$host/bulkheadd.sock" destroy web1 --force >/dev/null 2>&1 || true
    bulkheadctl --socket "$host/bulkheadd.sock" destroy web2 --force >/dev/null 2>&1 || true
    kill "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
  fi
  rm -rf "$bundle" "$host"
}
trap cleanup EXIT
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

echo
echo "=== the hosting face: bulkheadd + bulkheadctl"
bash tests/storage/make-busybox-rootfs.sh "$host/busybox-rootfs" >/dev/null
sock=$host/bulkheadd.sock
start_daemon() {
  bulkheadd --root "$host/root" --socket "$sock" >>"$host/bulkheadd.log" 2>&1 &
  daemon=$!
  for _ in $(seq 1 100); do bulkheadctl --socket "$sock" list >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "bulkheadd did not come up:" >&2
  cat "$host/bulkheadd.log" >&2
  exit 1
}
echo "+ bulkheadd --root $host/root --socket $sock &   # bulkheadctl --socket $sock ... below"
start_daemon
# Printed without the --socket every call carries; arguments with spaces in single quotes.
ctl() {
  local shown=() a
  for a in "$@"; do [[ $a == *" "* ]] && shown+=("'$a'") || shown+=("$a"); done
  echo "+ bulkheadctl ${shown[*]}"
  bulkheadctl --socket "$sock" "$@"
}
ctl template import busybox "$host/busybox-rootfs"
ctl template list
ctl create web1 --template busybox --hostname web1.example --restart on-failure
ctl start web1
ctl list
ctl exec web1 -- sh -c 'echo "hello from $(hostname), pid 1 is $(cat /proc/1/comm)"; ps'
ctl info web1
pid=$(bulkheadctl --socket "$sock" info web1 --json | jq .pid)
echo "+ kill -9 <bulkheadd>; bulkheadd ... &  (the container keeps running)"
kill -9 "$daemon"
{ wait "$daemon" || true; } 2>/dev/null # no "Killed" job notice
start_daemon
ctl list
[[ $(bulkheadctl --socket "$sock" info web1 --json | jq .pid) == "$pid" ]] || {
  echo "web1 did not keep its pid $pid across the daemon restart" >&2
  exit 1
}
ctl exec web1 -- sh -c 'echo "site v1" >/srv.txt'
ctl snapshot create web1 before-upgrade
ctl exec web1 -- rm /srv.txt
ctl snapshot list web1
ctl snapshot restore web1 before-upgrade
ctl exec web1 -- cat /srv.txt
ctl export web1 "$host/web1.tar.zst"
ctl import "$host/web1.tar.zst" web2
ctl start web2
ctl exec web2 -- cat /srv.txt
ctl destroy web2 --force
ctl stop web1
ctl destroy web1
ctl template rm busybox
