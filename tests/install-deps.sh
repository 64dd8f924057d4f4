#!/usr/bin/env bash
# Installs what building and testing bulkhead needs on Debian 12 (as root). Idempotent.
set -euo pipefail
packages=(cmake ninja-build g++ pkg-config git jq busybox-static
          libexpected-dev libcli11-dev libfmt-dev nlohmann-json3-dev libgtest-dev
          libseccomp-dev libcap-dev libmnl-dev libnftables-dev libcpp-httplib-dev uidmap iproute2 procps libcap2-bin
          libarchive-dev libssl-dev libsystemd-dev criu iptables libprotobuf-c-dev debootstrap lxcfs curl e2fsprogs kmod golang-go
          etcd-server etcd-client libxxhash-dev
          dpkg-dev file lintian man-db)  # the Debian packages: dpkg-shlibdeps, CPack's file checks, lintian
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
