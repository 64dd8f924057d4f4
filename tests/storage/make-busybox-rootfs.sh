#!/bin/sh
# Builds a small busybox system rootfs in DIR (created if missing) for tests and demos:
#   bin/busybox (from busybox-static) and a symlink per applet, /sbin/init -> ../bin/busybox,
#   a minimal /etc (inittab, passwd, group, hostname) and the usual empty mount points.
# Usage: make-busybox-rootfs.sh DIR   (BUSYBOX=/path/to/static/busybox to use another binary)
# Busybox init runs ::sysinit, then idles; SIGUSR2 powers it off (runs ::shutdown first).
set -eu
if [ $# -ne 1 ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
dir=$1
bb=${BUSYBOX:-/bin/busybox}
[ -x "$bb" ] || { echo "$0: $bb not found (apt-get install busybox-static)" >&2; exit 1; }

mkdir -p "$dir"
cd "$dir"
mkdir -p bin sbin etc root proc sys dev tmp run var/log
chmod 1777 tmp
chmod 0700 root
cp "$bb" bin/busybox
chmod 0755 bin/busybox
for applet in $("$bb" --list); do
  case $applet in
  busybox) ;;
  init | halt | poweroff | reboot) ln -sf ../bin/busybox "sbin/$applet" ;;
  *) [ -e "bin/$applet" ] || ln -s busybox "bin/$applet" ;;
  esac
done
ln -sf ../bin/busybox sbin/init

cat >etc/inittab <<'INITTAB'
::sysinit:/bin/true
::shutdown:/bin/true
INITTAB
cat >etc/passwd <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat >etc/group <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP
echo busybox >etc/hostname
