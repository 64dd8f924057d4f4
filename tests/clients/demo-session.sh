#!/usr/bin/env bash
# The README's client session, for real: containerd + ctr and podman driving bulkhead. Run it in
# the cgroup v2 VM (it prints each command and its output):
#   tests/vm/run-in-vm.sh -- bash tests/clients/demo-session.sh BULKHEAD IMAGE_TAR
set -u
BH=$1 IMAGE_TAR=$2
W=$(mktemp -d /var/tmp/bulkhead-demo.XXXXXX)
mount -t tmpfs demo "$W"
trap 'pkill -f "containerd --config $W" ; sleep 1; umount -l "$W"' EXIT
show() { printf '$ %s\n' "$*"; bash -c "$*" 2>&1 | sed 's/\r$//'; }
mkdir -p "$W/lib" "$W/run"
printf 'version = 2\nroot = "%s/lib"\nstate = "%s/run"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "/run/containerd/containerd.sock"\n' "$W" "$W" >"$W/config.toml"
containerd --config "$W/config.toml" >/dev/null 2>&1 &
sleep 3
ctr images import "$IMAGE_TAR" >/dev/null
I=localhost/bulkhead-busybox:latest
cp "$BH" /usr/local/bin/bulkhead
show "ctr run --rm --runc-binary /usr/local/bin/bulkhead $I hello sh -c 'echo hello from \$(hostname), pid \$\$'"
show "ctr run -d --runc-binary /usr/local/bin/bulkhead --memory-limit 67108864 $I web sleep 1000000"
show "ctr task exec --exec-id ps1 web ps -o pid,comm"
show "ctr task pause web && ctr task ls && ctr task resume web"
show "cat /sys/fs/cgroup/default/web/memory.max"
show "bulkhead --root /run/containerd/runc/default list"
show "ctr task kill -s SIGKILL web; sleep 1; ctr task rm web; ctr container rm web"
printf '[engine]\nevents_logger = "file"\n[containers]\nlog_driver = "k8s-file"\nnetns = "none"\n' >"$W/containers.conf"
export CONTAINERS_CONF=$W/containers.conf
podman --storage-driver vfs load -q -i "$IMAGE_TAR" >/dev/null
P="podman --storage-driver vfs --runtime /usr/local/bin/bulkhead --cgroup-manager cgroupfs"
show "$P run --rm --memory 64m --pids-limit 20 $I sh -c 'cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max'"
show "$P run -d --name db $I sleep 1000000 >/dev/null; $P exec db sh -c 'echo exec in \$(hostname)'"
show "$P pause db >/dev/null; $P inspect -f '{{.State.Status}}' db; $P unpause db >/dev/null; $P inspect -f '{{.State.Status}}' db"
show "$P rm -f -t 0 db"
show "$P run --rm $I no-such-command; echo exit=\$?"
