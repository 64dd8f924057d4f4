#!/usr/bin/env bash
# vm-replicate.sh (continuous replication in memory mode, host1 killed, the replica activated on
# host2) with an unprivileged container: both daemons make unprivileged containers by default from
# the same pool, their roots on an ext4 image (the VM's 6.1 kernel cannot idmap tmpfs); ct1 is
# restored on host2 in its own range 100000, its init that range's root.
# Usage: vm-replicate-unprivileged.sh BIN_DIR MAKE_ROOTFS_SCRIPT
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../vm/ext4-root.sh
source "$here/ext4-root.sh"
ext4_root /tmp/bh-mh-repl 2G
export MH_REPLICATE_BASE=/tmp/bh-mh-repl/ext4/mh MH_REPLICATE_RANGE=100000
export MH_DAEMON_FLAGS="--id-range 100000:196608 --unprivileged-default"
exec bash "$here/vm-replicate.sh" "$@"
