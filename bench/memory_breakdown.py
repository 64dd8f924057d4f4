#!/usr/bin/env python3
"""Where a detached container's memory goes, per runtime: N `run -d` of `sleep`, then the deltas of a
memory cgroup of our own (usage and kernel memory), /proc/slabinfo (system-wide, so run it on an
idle machine) and /proc/meminfo, divided by N. The numbers behind bench/README.md's density notes.

  unshare -m --propagation private python3 bench/memory_breakdown.py N bulkhead,crun,runc [BULKHEAD]

Needs the v1/v2 hybrid host's v1 memory controller (it makes and removes a child of its own
cgroup there; nothing else of the host's hierarchies is touched) and crun, runc, busybox-static.
"""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import OwnV1Memcg  # noqa: E402


def memcg_of_self():
    for line in open("/proc/self/cgroup"):
        parts = line.strip().split(":", 2)
        if "memory" in parts[1].split(","):
            return f"/sys/fs/cgroup/memory{parts[2]}"
    raise SystemExit("no v1 memory cgroup (this script is for the hybrid host)")


def main():
    n = int(sys.argv[1])
    runtimes = sys.argv[2].split(",")
    bulkhead = os.path.abspath(sys.argv[3] if len(sys.argv) > 3 else "build/cli/bulkhead")
    own = OwnV1Memcg(memcg_of_self(), "bulkhead-breakdown")
    own.enter()
    memcg = own.path
    fds = {k: os.open(f"{memcg}/memory.{k}", os.O_RDONLY) for k in ("usage_in_bytes", "kmem.usage_in_bytes", "stat")}
    work = f"/tmp/bulkhead-breakdown.{os.getpid()}"
    os.makedirs(work)
    subprocess.run(["mount", "-t", "cgroup2", "none", "/sys/fs/cgroup"], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "breakdown", work], check=True)
    subprocess.run(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"], stderr=subprocess.DEVNULL)
    try:
        rootfs = f"{work}/b/rootfs"
        os.makedirs(rootfs + "/bin")
        for d in ("proc", "dev", "sys", "tmp", "etc"):
            os.makedirs(f"{rootfs}/{d}")
        shutil.copy2("/bin/busybox", rootfs + "/bin/busybox")
        os.symlink("busybox", rootfs + "/bin/sleep")
        subprocess.run(["runc", "spec"], cwd=f"{work}/b", check=True)
        with open(f"{work}/b/config.json") as f:
            c = json.load(f)
        c["process"]["terminal"] = False
        c["process"]["args"] = ["/bin/sleep", "100000"]
        c["linux"]["namespaces"] = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]
        with open(f"{work}/b/config.json", "w") as f:
            json.dump(c, f)
        cmds = {"bulkhead": [bulkhead, "--root", f"{work}/s-bulkhead"],
                "crun": ["crun", "--cgroup-manager=disabled", "--root", f"{work}/s-crun"],
                "runc": ["runc", "--root", f"{work}/s-runc"]}

        def value(k):
            return int(os.pread(fds[k], 64, 0))

        def memstat():
            os.lseek(fds["stat"], 0, 0)
            return {l.split()[0]: int(l.split()[1]) for l in os.read(fds["stat"], 1 << 16).decode().splitlines()}

        def slabs():
            out = {}
            for line in open("/proc/slabinfo").readlines()[2:]:
                f = line.split()
                out[f[0]] = int(f[1]) * int(f[3])
            return out

        def meminfo():
            return {l.split(":")[0]: int(l.split()[1]) for l in open("/proc/meminfo")}

        for rt in runtimes:
            time.sleep(3)  # the previous runtime's network namespaces are freed asynchronously
            before = (value("usage_in_bytes"), value("kmem.usage_in_bytes"), slabs(), memstat(), meminfo())
            ids = [f"{rt}-{i}" for i in range(n)]
            for cid in ids:
                subprocess.run(cmds[rt] + ["run", "-d", "--bundle", f"{work}/b", cid], check=True,
                               stdout=subprocess.DEVNULL)
            time.sleep(1)
            after = (value("usage_in_bytes"), value("kmem.usage_in_bytes"), slabs(), memstat(), meminfo())
            print(f"== {rt} N={n}: memcg usage {(after[0] - before[0]) / n / 1024:.1f} KiB per container, "
                  f"of which kernel {(after[1] - before[1]) / n / 1024:.1f} KiB")
            top = sorted(((after[2].get(k, 0) - before[2].get(k, 0), k) for k in after[2]), reverse=True)
            print("   slab bytes per container:", ", ".join(f"{k}={v / n:.0f}" for v, k in top[:20] if v > 0))
            print("   memcg stat KiB per container:", ", ".join(
                f"{k}={(after[3][k] - before[3][k]) / n / 1024:.1f}" for k in ("cache", "rss", "shmem", "mapped_file")))
            print("   meminfo KiB per container:", ", ".join(
                f"{k}={(after[4][k] - before[4][k]) / n:.1f}"
                for k in ("Slab", "SUnreclaim", "KernelStack", "PageTables", "Percpu", "Shmem", "AnonPages")))
            for cid in ids:
                subprocess.run(cmds[rt] + ["delete", "-f", cid], check=True)
    finally:
        for fd in fds.values():
            os.close(fd)
        subprocess.run(["umount", "-l", work])
        shutil.rmtree(work, ignore_errors=True)
        err = own.leave()
        if err:
            print(err, file=sys.stderr)


if __name__ == "__main__":
    main()
