#!/usr/bin/env python3
"""Builds an OCI image archive (image-layout tar) from Debian's busybox-static, so the client
suites have an image without pulling anything.

    make-image.py OUT.tar [NAME]     NAME defaults to localhost/bulkhead-busybox:latest

The one layer holds /bin/busybox, a symlink per applet, the usual empty directories and a
minimal /etc. Both `ctr images import` (io.containerd.image.name) and `podman load`
(org.opencontainers.image.ref.name) take it as it is.
"""
import hashlib
import io
import json
import subprocess
import sys
import tarfile

BUSYBOX = "/bin/busybox"
DIRS = ["bin", "dev", "etc", "proc", "root", "run", "sys", "tmp", "var", "var/tmp", "usr", "usr/bin"]
FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    "etc/group": "root:x:0:\nnogroup:x:65534:\n",
    "etc/hostname": "bulkhead\n",
}


def entry(name, kind, mode, data=b"", link=""):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.uid, info.gid = kind, mode, 0, 0, 0
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.linkname = link
    return info, io.BytesIO(data) if kind == tarfile.REGTYPE else None


def layer_tar():
    applets = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True, text=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in DIRS:
            tar.addfile(*entry(d, tarfile.DIRTYPE, 0o1777 if d in ("tmp", "var/tmp") else 0o755))
        with open(BUSYBOX, "rb") as f:
            tar.addfile(*entry("bin/busybox", tarfile.REGTYPE, 0o755, f.read()))
        for a in sorted(set(applets) - {"busybox"}):
            tar.addfile(*entry(f"bin/{a}", tarfile.SYMTYPE, 0o777, link="busybox"))
        for name, text in FILES.items():
            tar.addfile(*entry(name, tarfile.REGTYPE, 0o644, text.encode()))
    return buf.getvalue()


def blob(data, media_type):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return {"mediaType": media_type, "digest": digest, "size": len(data)}, data


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    out = sys.argv[1]
    name = sys.argv[2] if len(sys.argv) == 3 else "localhost/bulkhead-busybox:latest"
    layer_desc, layer = blob(layer_tar(), "application/vnd.oci.image.layer.v1.tar")
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["/bin/sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]},
        "history": [{"created": "2026-01-01T00:00:00Z", "created_by": "tests/clients/make-image.py"}],
    }
    config_desc, config_data = blob(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config_desc, "layers": [layer_desc]}
    manifest_desc, manifest_data = blob(json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
    manifest_desc["annotations"] = {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name}
    manifest_desc["platform"] = {"architecture": "amd64", "os": "linux"}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [manifest_desc]}
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(*entry("oci-layout", tarfile.REGTYPE, 0o644, b'{"imageLayoutVersion":"1.0.0"}'))
        tar.addfile(*entry("index.json", tarfile.REGTYPE, 0o644, json.dumps(index).encode()))
        tar.addfile(*entry("blobs", tarfile.DIRTYPE, 0o755))
        tar.addfile(*entry("blobs/sha256", tarfile.DIRTYPE, 0o755))
        for desc, data in ((layer_desc, layer), (config_desc, config_data), (manifest_desc, manifest_data)):
            tar.addfile(*entry("blobs/sha256/" + desc["digest"].split(":")[1], tarfile.REGTYPE, 0o644, data))
    print(name)


if __name__ == "__main__":
    main()
