# shellcheck shell=bash
# ext4_root DIR SIZE: an ext4 image DIR/disk.img of SIZE (truncate syntax) mounted on DIR/ext4, for
# a daemon root whose templates must be idmappable: the VM's 6.1 kernel idmaps ext4 but not tmpfs
# (6.3) nor its 9p/overlay root. DIR and the mount are made searchable by every uid (0711) so the
# containers' range roots reach their rootfs below. Sourced by the VM scenarios of unprivileged
# containers, which unmount DIR/ext4 when done (or leave it to the VM's end).
ext4_root() {
  local dir=$1 size=$2
  mkdir -p "$dir/ext4"
  chmod 711 "$dir"
  modprobe loop 2>/dev/null || true
  modprobe ext4 2>/dev/null || true
  truncate -s "$size" "$dir/disk.img"
  mkfs.ext4 -q -F "$dir/disk.img"
  mount -o loop "$dir/disk.img" "$dir/ext4"
  chmod 711 "$dir/ext4"
}
