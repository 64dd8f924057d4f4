#!/usr/bin/env python3
"""bulkhead vs crun vs runc: the measuring stick (issue 6).

Run it through bench/run.sh, which installs what is missing, builds bulkhead and puts this script
in a private mount namespace. This file only measures and reports; it never asserts anything.

Setup, for fairness (see bench/README.md):
  * one rootfs (busybox-static, /bin/true -> busybox) and one config from `runc spec`
    (terminal false, the same namespaces: pid, network, ipc, uts, mount) for all three runtimes;
    the detached `sleep` containers differ only in process.args;
  * everything runs in one private mount namespace (run.sh: unshare -m --propagation private);
    when /sys/fs/cgroup is not cgroup2 (the v1/v2 hybrid dev host), a cgroup2 is mounted over
    /sys/fs/cgroup inside that namespace only, so all three runtimes see the same pure cgroup v2
    view (crun refuses the hybrid layout; runc and bulkhead then use cgroup v2 as well);
  * the bundle and the three --root state directories live on a tmpfs (as /run does on a normal
    system; this dev host's /tmp and /run are ext4 with `discard`);
  * a bpffs on /sys/fs/bpf, as systemd mounts at boot, when the host has none (private ns only);
  * runtimes are interleaved per iteration, with the starting runtime rotated, so drift and the
    kernel's asynchronous namespace teardown hit all of them equally.
"""

import argparse
import datetime
import errno
import json
import math
import os
import platform
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

RUNTIMES = ["bulkhead", "crun", "runc"]
NAMESPACES = ["pid", "network", "ipc", "uts", "mount"]
MEM_LIMIT = 64 * 1024 * 1024
PIDS_LIMIT = 100


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout()


signal.signal(signal.SIGALRM, _alarm)

DEVNULL = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)


class Sink:
    """A file that a child writes stdout or stderr to; truncated before each command."""

    def __init__(self, d, name):
        self.path = os.path.join(d, name)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)

    def reset(self):
        os.ftruncate(self.fd, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)

    def text(self, limit=4000):
        with open(self.path, "rb") as f:
            return f.read()[-limit:].decode(errors="replace").strip()


class Result:
    __slots__ = ("rc", "ms", "cpu_ms", "user_ms", "sys_ms", "maxrss_kb", "err", "out")


def spawn(argv, timeout, out=None, err=None):
    """posix_spawn + wait4: wall time in ms, CPU (user+sys of the whole reaped tree), peak RSS."""
    if out:
        out.reset()
    if err:
        err.reset()
    fa = [
        (os.POSIX_SPAWN_DUP2, DEVNULL, 0),
        (os.POSIX_SPAWN_DUP2, out.fd if out else DEVNULL, 1),
        (os.POSIX_SPAWN_DUP2, err.fd if err else DEVNULL, 2),
    ]
    r = Result()
    t0 = time.perf_counter_ns()
    pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=fa)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        _, status, ru = os.wait4(pid, 0)
        t1 = time.perf_counter_ns()
        signal.setitimer(signal.ITIMER_REAL, 0)
    except Timeout:
        os.kill(pid, signal.SIGKILL)
        _, status, ru = os.wait4(pid, 0)
        t1 = time.perf_counter_ns()
        status = None
    r.rc = os.waitstatus_to_exitcode(status) if status is not None else "timeout"
    r.ms = (t1 - t0) / 1e6
    r.cpu_ms = (ru.ru_utime + ru.ru_stime) * 1000.0
    r.user_ms = ru.ru_utime * 1000.0
    r.sys_ms = ru.ru_stime * 1000.0
    r.maxrss_kb = ru.ru_maxrss
    r.err = err.text() if (err and r.rc != 0) else ""
    r.out = out.text() if out else ""
    return r


def pct(values, p):
    v = sorted(values)
    if not v:
        return None
    k = max(0, math.ceil(p / 100.0 * len(v)) - 1)
    return v[k]


def summarize(values):
    if not values:
        return None
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p90": pct(values, 90),
        "min": min(values),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60).stdout.strip()
    except Exception as e:  # noqa: BLE001 - metadata only
        return f"error: {e}"


class OwnV1Memcg:
    """A child of this process's own v1 memory cgroup, entered and left by this process. Creating and
    removing a child of our own cgroup leaves the host's hierarchies alone. The parent is opened on
    enter, because callers cover /sys/fs/cgroup with a cgroup2 mount before they leave."""

    def __init__(self, parent, prefix):
        self.parent = parent
        self.name = f"{prefix}-{os.getpid()}"
        self.path = os.path.join(parent, self.name)
        self.parent_fd = self.procs_fd = None

    def enter(self):
        try:
            self.parent_fd = os.open(self.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            self.procs_fd = os.open(os.path.join(self.parent, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
            os.mkdir(self.path)
            with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        except OSError:
            self.leave()
            raise

    def leave(self):
        """Moves back to the parent and removes the child; returns an error text or None."""
        err = None
        try:
            if self.procs_fd is not None:
                os.write(self.procs_fd, str(os.getpid()).encode())
            for _ in range(50 if self.parent_fd is not None else 0):  # uncharging is asynchronous
                try:
                    os.rmdir(self.name, dir_fd=self.parent_fd)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY:
                        raise
                    time.sleep(0.1)
        except OSError as e:
            err = f"removing memory cgroup {self.path}: {e}"
        for fd in (self.procs_fd, self.parent_fd):
            if fd is not None:
                os.close(fd)
        self.parent_fd = self.procs_fd = None
        return err


class Bench:
    def __init__(self, a):
        self.a = a
        self.vm = a.env == "vm"
        self.timeout = 600 if self.vm else 60
        self.work = tempfile.mkdtemp(prefix="bulkhead-bench.", dir=a.workdir)
        # The bundle and the three state roots live on a tmpfs, as /run does on a normal system:
        # on this dev host /tmp and /run are ext4 mounted with `discard`, where every unlinked
        # state file costs a synchronous discard and the runtimes would be timed against the disk.
        # (Only inside the private mount namespace; --workdir-fs keep skips it.)
        self.work_fs = "as is"
        if a.workdir_fs == "tmpfs":
            subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0700", "bench-tmpfs", self.work], check=True)
            self.work_fs = "tmpfs"
        self.tag = f"b{os.getpid()}"
        self.err = Sink(self.work, "stderr.txt")
        self.out = Sink(self.work, "stdout.txt")
        self.res = {"meta": {}, "setup": {}, "verify": {}, "timings": {}, "summary": {}, "errors": []}
        self.failed = {}  # runtime -> first failure text for a phase
        self.seq = 0

    # ---------------------------------------------------------------- setup
    def cgroup_setup(self):
        s = self.res["setup"]

        def fstype(p):
            return sh(f"stat -f -c %T {p}")

        # Remember our v1 memory cgroup (the dev host) before /sys/fs/cgroup is covered: its usage
        # is the per-session, kernel-memory-inclusive way to see what containers cost.
        self.memcg_fd = None
        if fstype("/sys/fs/cgroup") != "cgroup2fs":
            for line in open("/proc/self/cgroup"):
                parts = line.strip().split(":", 2)
                if len(parts) == 3 and "memory" in parts[1].split(","):
                    self.open_own_memcg(s, f"/sys/fs/cgroup/memory{parts[2]}", parts[2])
            s["host_cgroup_layout"] = "hybrid v1/v2 (cgroup2 at /sys/fs/cgroup/unified)" if fstype(
                "/sys/fs/cgroup/unified") == "cgroup2fs" else f"{fstype('/sys/fs/cgroup')} at /sys/fs/cgroup"
            rc = subprocess.run(["mount", "-t", "cgroup2", "none", "/sys/fs/cgroup"]).returncode
            if rc != 0:
                raise SystemExit("cannot mount cgroup2 over /sys/fs/cgroup in the private mount namespace")
            s["cgroup_view"] = ("private mount ns: fresh cgroup2 mounted over /sys/fs/cgroup (pure v2 view, "
                                "same hierarchy for all three runtimes)")
        else:
            s["host_cgroup_layout"] = "unified cgroup v2 at /sys/fs/cgroup"
            s["cgroup_view"] = "private mount ns over the unified cgroup v2 hierarchy"
        # A normal system has a bpffs on /sys/fs/bpf (systemd mounts it at boot); this dev host does
        # not. bulkhead pins its device eBPF program there (cgroups/device_filter.hpp); crun and
        # runc do not use it. Mounted inside the private mount namespace only.
        if fstype("/sys/fs/bpf") == "bpf_fs":
            s["bpffs"] = "host's bpffs on /sys/fs/bpf"
        elif subprocess.run(["mount", "-t", "bpf", "-o", "mode=0700", "bpf", "/sys/fs/bpf"]).returncode == 0:
            s["bpffs"] = "fresh bpffs mounted on /sys/fs/bpf in the private mount ns (as systemd does at boot)"
        else:
            s["bpffs"] = "none (mounting one failed)"
        s["cgroup2_controllers"] = sh("cat /sys/fs/cgroup/cgroup.controllers")
        s["cgroup2_subtree_control"] = sh("cat /sys/fs/cgroup/cgroup.subtree_control")
        if self.memcg_fd is None:
            s["memory_source"] = "system-wide MemTotal - MemAvailable (/proc/meminfo)" + (
                ", page cache dropped and the runtimes' files re-read before each reading" if self.vm else "")

    def open_own_memcg(self, s, parent, rel):
        """Moves the bench into a child of its own v1 memory cgroup, so that the reading holds the bench,
        the runtimes and their containers, and nothing else of this login session (a shell or a
        build in the same session moved the shared cgroup's usage by tens of KiB per container)."""
        self.memcg_child = OwnV1Memcg(parent, "bulkhead-bench")
        try:
            self.memcg_child.enter()
        except OSError as e:
            log(f"!! own memory cgroup {self.memcg_child.path}: {e}; reading the session's cgroup instead")
            self.memcg_child = None
            child, rel = parent, rel + " (shared with the login session)"
        else:
            child, rel = self.memcg_child.path, rel + "/" + self.memcg_child.name
        p = os.path.join(child, "memory.usage_in_bytes")
        if os.path.exists(p):
            self.memcg_fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
            s["memory_source"] = f"v1 memcg usage_in_bytes of a cgroup of the bench's own ({rel})"

    def leave_own_memcg(self):
        if getattr(self, "memcg_child", None):
            err = self.memcg_child.leave()
            if err:
                log(f"!! {err}")
            self.memcg_child = None

    def settle_mem(self, limit_s=20.0):
        """Waits until the memory reading stops moving: the previous round's network namespaces are
        torn down by a kernel worker after `delete` returns, and their memory would otherwise be
        subtracted from whichever runtime is measured next."""
        if self.memcg_fd is None:
            time.sleep(1.0)  # the VM's system-wide reading moves by MiBs: it would never settle
            return self.mem_bytes()
        prev = self.mem_bytes()
        t_end = time.time() + limit_s
        while time.time() < t_end:
            time.sleep(0.5)
            cur = self.mem_bytes()
            if abs(cur - prev) < (64 << 10):
                return cur
            prev = cur
        return prev

    def mem_bytes(self):
        if self.memcg_fd is not None:
            return int(os.pread(self.memcg_fd, 64, 0).decode())
        if self.vm:
            # The throw-away VM: drop the page cache (9p reads make it noisy), then warm the three
            # runtimes' binaries and libraries again so both readings hold the same cached files.
            os.sync()
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("3\n")
            for path in self.warm_files:
                with open(path, "rb") as f:
                    while f.read(1 << 20):
                        pass
        m = {}
        for line in open("/proc/meminfo"):
            k, v = line.split(":", 1)
            m[k] = int(v.split()[0]) * 1024
        return m["MemTotal"] - m["MemAvailable"]

    def make_bundle(self):
        a = self.a
        rootfs = os.path.join(self.work, "rootfs")
        os.makedirs(os.path.join(rootfs, "bin"))
        for d in ("proc", "dev", "sys", "tmp", "etc"):
            os.makedirs(os.path.join(rootfs, d))
        shutil.copy2(a.busybox, os.path.join(rootfs, "bin", "busybox"))
        for name in ("true", "sh", "sleep", "cat", "echo"):
            os.symlink("busybox", os.path.join(rootfs, "bin", name))
        self.rootfs = rootfs
        tmp = os.path.join(self.work, "spec")
        os.makedirs(tmp)
        subprocess.run(["runc", "spec"], cwd=tmp, check=True)
        base = json.load(open(os.path.join(tmp, "config.json")))
        base["process"]["terminal"] = False
        base["root"]["path"] = rootfs
        base["linux"]["namespaces"] = [{"type": t} for t in NAMESPACES]
        if self.vm and not a.no_limits:
            res = base["linux"].setdefault("resources", {})
            res["memory"] = {"limit": MEM_LIMIT}
            res["pids"] = {"limit": PIDS_LIMIT}
        self.bundles = {}
        for name, args in (("true", ["/bin/true"]), ("sleep", ["/bin/sleep", "100000"]),
                           ("verify", ["/bin/sh", "-c", "echo bench-ok $(cat /proc/self/cgroup | tail -1)"])):
            d = os.path.join(self.work, "bundle-" + name)
            os.makedirs(d)
            cfg = json.loads(json.dumps(base))
            cfg["process"]["args"] = args
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump(cfg, f, indent=2)
            self.bundles[name] = d
        s = self.res["setup"]
        s["bundle"] = {
            "rootfs": "busybox-static copied to rootfs/bin/busybox, true/sh/sleep -> busybox",
            "busybox": a.busybox,
            "config": "runc spec; process.terminal=false; root.path=<shared rootfs>; args [/bin/true]",
            "namespaces": NAMESPACES,
            "resources": base["linux"].get("resources"),
            "filesystem": f"bundle and --root state dirs on {self.work_fs} ({self.work})",
        }

    def runtime_cmds(self):
        a = self.a
        self.rt = {
            "bulkhead": [a.bulkhead, "--root", os.path.join(self.work, "root-bulkhead")],
            "crun": ["crun", "--root", os.path.join(self.work, "root-crun")],
            "runc": ["runc", "--root", os.path.join(self.work, "root-runc")],
        }
        self.bin = {"bulkhead": a.bulkhead, "crun": shutil.which("crun"), "runc": shutil.which("runc")}

    def new_id(self, prefix):
        self.seq += 1
        return f"{self.tag}-{prefix}{self.seq}"

    # -------------------------------------------------------------- verify
    def verify(self):
        """Each runtime must really run the container (exit 0 and output) before anything is timed."""
        v = self.res["verify"]
        # crun cannot load its cgroup v2 device eBPF program without CAP_SYS_RESOURCE (it raises
        # RLIMIT_MEMLOCK first, unconditionally); fall back to --cgroup-manager=disabled and say so.
        for name in RUNTIMES:
            for attempt in range(2):
                cid = self.new_id("verify")
                r = spawn(self.rt[name] + ["run", "--bundle", self.bundles["verify"], cid], self.timeout,
                          out=self.out, err=self.err)
                ok = r.rc == 0 and "bench-ok" in r.out
                if not ok:
                    subprocess.run(self.rt[name] + ["delete", "-f", cid], capture_output=True)
                    # A runtime that failed half-way may leave its (empty) cgroup behind in the
                    # shared hierarchy (crun's cgroupfs attempt does): remove what it named.
                    for d in (f"/sys/fs/cgroup/{cid}", f"/sys/fs/cgroup/bulkhead/{cid}"):
                        try:
                            os.rmdir(d)
                        except OSError:
                            pass
                if (not ok and name == "crun" and attempt == 0 and "RLIM_MEMLOCK" in r.err):
                    self.rt["crun"].insert(1, "--cgroup-manager=disabled")
                    self.res["setup"]["crun_cgroup_manager"] = (
                        "disabled: crun's cgroupfs manager failed with '" + r.err.splitlines()[-1] +
                        "' (crun raises RLIMIT_MEMLOCK to load its cgroup v2 device eBPF program; "
                        "this host withholds CAP_SYS_RESOURCE). crun therefore creates NO cgroup here, "
                        "while bulkhead and runc do")
                    continue
                break
            v[name] = {"rc": r.rc, "output": r.out[-300:], "stderr": r.err[-600:], "ok": ok,
                       "argv": self.rt[name]}
            if not ok:
                self.failed[name] = f"verify failed: rc={r.rc}: {r.err[-400:]}"
                log(f"!! {name}: verification FAILED (rc={r.rc}): {r.err[-400:]}")
            else:
                log(f"ok {name}: {r.out.strip()}")
        self.res["setup"].setdefault("crun_cgroup_manager", "cgroupfs (default)")
        # Limits actually applied (only meaningful where the config has resources).
        if self.vm and not self.a.no_limits:
            for name in RUNTIMES:
                if name in self.failed:
                    continue
                v[name]["limits"] = self.applied_limits(name)

    def applied_limits(self, name):
        cid = self.new_id("lim")
        pidfile = os.path.join(self.work, "lim.pid")
        r = spawn(self.rt[name] + ["create", "--bundle", self.bundles["sleep"], "--pid-file", pidfile, cid],
                  self.timeout, err=self.err)
        out = {"create_rc": r.rc}
        if r.rc != 0:
            out["error"] = r.err[-400:]
            return out
        try:
            pid = int(open(pidfile).read().strip())
            cg = [l for l in open(f"/proc/{pid}/cgroup").read().splitlines() if l.startswith("0::")][0][3:]
            out["cgroup"] = cg
            for f in ("memory.max", "pids.max"):
                p = f"/sys/fs/cgroup{cg}/{f}"
                out[f] = open(p).read().strip() if os.path.exists(p) else "missing"
        except Exception as e:  # noqa: BLE001
            out["error"] = str(e)
        spawn(self.rt[name] + ["delete", "-f", cid], self.timeout, err=self.err)
        return out

    # ---------------------------------------------------------------- timed
    def record(self, key, name, r, ok=None):
        t = self.res["timings"].setdefault(key, {}).setdefault(
            name, {"ms": [], "cpu_ms": [], "user_ms": [], "sys_ms": [], "fail": 0})
        good = (r.rc == 0) if ok is None else ok
        if good:
            t["ms"].append(round(r.ms, 4))
            t["cpu_ms"].append(round(r.cpu_ms, 3))
            t["user_ms"].append(round(r.user_ms, 3))
            t["sys_ms"].append(round(r.sys_ms, 3))
        else:
            t["fail"] += 1
            if "first_error" not in t:
                t["first_error"] = f"rc={r.rc}: {r.err[-400:]}"
        return good

    def rotated(self, items, i):
        k = i % len(items)
        return items[k:] + items[:k]

    def bench_run(self):
        """run of /bin/true end to end, plus the two floors, interleaved."""
        floor_fork = [os.path.join(self.rootfs, "bin", "true")]
        unshare = ["unshare", "--pid", "--fork", "--mount", "--net", "--ipc", "--uts",
                   f"--root={self.rootfs}", "/bin/true"]
        self.res["setup"]["floors"] = {
            "floor-fork": "posix_spawn of rootfs/bin/true (busybox) on the host, no namespaces",
            "floor-unshare": " ".join(unshare[:-2]) + " --root=<rootfs> /bin/true  (same 5 namespaces, "
                             "chroot, exec; unshare(1) also makes / rprivate)",
        }
        items = ["floor-fork", "floor-unshare"] + [n for n in RUNTIMES if n not in self.failed]
        n = self.a.runs
        log(f"== run /bin/true end to end x{n} (interleaved: {', '.join(items)})")
        for i in range(n):
            for it in self.rotated(items, i):
                if it == "floor-fork":
                    r = spawn(floor_fork, self.timeout, err=self.err)
                elif it == "floor-unshare":
                    r = spawn(unshare, self.timeout, err=self.err)
                else:
                    cid = self.new_id("run")
                    r = spawn(self.rt[it] + ["run", "--bundle", self.bundles["true"], cid], self.timeout,
                              err=self.err)
                    if r.rc != 0:
                        subprocess.run(self.rt[it] + ["delete", "-f", cid], capture_output=True)
                self.record("run", it, r)
            if (i + 1) % max(1, n // 5) == 0:
                log(f"   {i + 1}/{n}")

    def wait_exit(self, pid, timeout_s):
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return True
        try:
            p = select.poll()
            p.register(fd, select.POLLIN)
            return bool(p.poll(timeout_s * 1000))
        finally:
            os.close(fd)

    def bench_lifecycle(self):
        """create, start, delete separately (container exits between start and delete)."""
        items = [n for n in RUNTIMES if n not in self.failed]
        n = self.a.runs
        pidfile = os.path.join(self.work, "csd.pid")
        log(f"== create / start / delete x{n}")
        for i in range(n):
            for it in self.rotated(items, i):
                cid = self.new_id("csd")
                if os.path.exists(pidfile):
                    os.unlink(pidfile)
                r = spawn(self.rt[it] + ["create", "--bundle", self.bundles["true"], "--pid-file", pidfile, cid],
                          self.timeout, err=self.err)
                if not self.record("create", it, r):
                    subprocess.run(self.rt[it] + ["delete", "-f", cid], capture_output=True)
                    continue
                pid = int(open(pidfile).read().strip())
                r = spawn(self.rt[it] + ["start", cid], self.timeout, err=self.err)
                self.record("start", it, r)
                if not self.wait_exit(pid, 30):
                    self.res["errors"].append(f"{it}: container {cid} did not exit within 30 s after start")
                r = spawn(self.rt[it] + ["delete", cid], self.timeout, err=self.err)
                if not self.record("delete", it, r):
                    subprocess.run(self.rt[it] + ["delete", "-f", cid], capture_output=True)
            if (i + 1) % max(1, n // 5) == 0:
                log(f"   {i + 1}/{n}")

    def bench_exec(self):
        """exec of /bin/true into a running (sleeping) container."""
        items = []
        ids = {}
        ex = self.res["setup"].setdefault("exec", {})
        for name in RUNTIMES:
            if name in self.failed:
                continue
            h = spawn(self.rt[name] + ["exec", "--help"], self.timeout, out=self.out, err=self.err)
            if h.rc != 0:
                ex[name] = f"n/a: `{name} exec --help` exited {h.rc}"
                continue
            cid = self.new_id("exec")
            r = spawn(self.rt[name] + ["run", "-d", "--bundle", self.bundles["sleep"], cid], self.timeout,
                      err=self.err)
            if r.rc != 0:
                ex[name] = f"n/a: detached run for exec failed rc={r.rc}: {r.err[-300:]}"
                continue
            ids[name] = cid
            t = spawn(self.rt[name] + ["exec", cid, "/bin/true"], self.timeout, err=self.err)
            if t.rc != 0:
                ex[name] = f"failed: exec /bin/true rc={t.rc}: {t.err[-300:]}"
                continue
            ex[name] = "ok"
            items.append(name)
        n = self.a.runs
        log(f"== exec /bin/true x{n} into running containers: {', '.join(items) or 'none'}")
        for i in range(n):
            for it in self.rotated(items, i):
                r = spawn(self.rt[it] + ["exec", ids[it], "/bin/true"], self.timeout, err=self.err)
                self.record("exec", it, r)
        for name, cid in ids.items():
            spawn(self.rt[name] + ["delete", "-f", cid], self.timeout, err=self.err)

    def bench_rss(self):
        """Peak RSS of the runtime process (GNU time %M: max RSS of it and its reaped descendants)."""
        items = [n for n in RUNTIMES if n not in self.failed]
        k = self.a.rss_runs
        rssfile = os.path.join(self.work, "rss.txt")
        log(f"== peak RSS (/usr/bin/time -f %M) x{k}")
        for i in range(k):
            for it in self.rotated(items, i):
                cid = self.new_id("rss")
                r = spawn(["/usr/bin/time", "-f", "%M", "-o", rssfile] + self.rt[it] +
                          ["run", "--bundle", self.bundles["true"], cid], self.timeout, err=self.err)
                if r.rc == 0:
                    kb = int(open(rssfile).read().strip().splitlines()[-1])
                    self.res["timings"].setdefault("rss_kb", {}).setdefault(it, []).append(kb)

    def bench_instructions(self):
        """Instructions per `run`: perf stat if the CPU exposes the counter, else callgrind."""
        ins = self.res.setdefault("instructions", {"method": None, "per_runtime": {}})
        probe = subprocess.run(["perf", "stat", "-x,", "-e", "instructions", "--", "true"],
                               capture_output=True, text=True) if shutil.which("perf") else None
        perf_ok = probe is not None and probe.returncode == 0 and re.search(r"^\d+,", probe.stderr, re.M)
        items = [n for n in RUNTIMES if n not in self.failed]
        if perf_ok:
            ins["method"] = "perf stat -e instructions (user+kernel, whole process tree), median of 5"
            out = os.path.join(self.work, "perf.txt")
            for name in items:
                vals = []
                for _ in range(5):
                    cid = self.new_id("perf")
                    r = spawn(["perf", "stat", "-x,", "-o", out, "-e", "instructions", "--"] + self.rt[name] +
                              ["run", "--bundle", self.bundles["true"], cid], self.timeout, err=self.err)
                    m = re.search(r"^(\d+),", open(out).read(), re.M)
                    if r.rc == 0 and m:
                        vals.append(int(m.group(1)))
                ins["per_runtime"][name] = statistics.median(vals) if vals else "n/a"
            return
        why = "perf: `perf stat -e instructions true` reports <not supported> (no PMU in this VM)" if probe \
            else "perf: not installed"
        if shutil.which("valgrind"):
            ins["method"] = ("callgrind Ir (user space of the runtime process only, children not traced); " + why)
            for name in items:
                cid = self.new_id("vg")
                r = spawn(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"] + self.rt[name] +
                          ["run", "--bundle", self.bundles["true"], cid], self.timeout * 3, err=self.err)
                subprocess.run(self.rt[name] + ["delete", "-f", cid], capture_output=True)
                txt = open(self.err.path, errors="replace").read()
                m = re.search(r"Collected : (\d+)", txt)
                if r.rc == 0 and m:
                    ins["per_runtime"][name] = int(m.group(1))
                else:
                    last = [l for l in txt.splitlines() if not l.startswith("==")]
                    reason = (last[-1] if last else f"rc={r.rc}")[:200]
                    ins["per_runtime"][name] = f"n/a (fails under valgrind: {reason})"
            # `state` clones nothing, so callgrind runs it everywhere but under Go: a deterministic
            # count of one short-lived invocation (startup, linking, argument and JSON parsing).
            st = ins.setdefault("state_per_runtime", {})
            pidfile = os.path.join(self.work, "ins.pid")
            for name in items:
                cid = self.new_id("ins")
                r = spawn(self.rt[name] + ["create", "--bundle", self.bundles["sleep"], "--pid-file", pidfile, cid],
                          self.timeout, err=self.err)
                if r.rc != 0:
                    st[name] = f"n/a (create failed rc={r.rc})"
                    continue
                r = spawn(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"] + self.rt[name] +
                          ["state", cid], self.timeout * 3, out=self.out, err=self.err)
                txt = open(self.err.path, errors="replace").read()
                m = re.search(r"Collected : (\d+)", txt)
                if r.rc == 0 and m:
                    st[name] = int(m.group(1))
                else:
                    last = [l for l in txt.splitlines() if l.strip() and not l.startswith("==")]
                    st[name] = f"n/a (fails under valgrind: {(last[-1] if last else f'rc={r.rc}')[:160]})"
                spawn(self.rt[name] + ["delete", "-f", cid], self.timeout, err=self.err)
        else:
            ins["method"] = why + "; valgrind not installed"
            for name in items:
                ins["per_runtime"][name] = "n/a"

    def bench_density(self):
        items = [n for n in RUNTIMES if n not in self.failed]
        dens = self.res.setdefault("density", {})
        reps = max(1, self.a.density_repeats)
        for ni, N in enumerate(self.a.density):
            samples = {it: [] for it in items}
            for rep in range(reps):
                for it in self.rotated(items, ni + rep):
                    log(f"== density {it} N={N} ({rep + 1}/{reps})")
                    samples[it].append(self.density_round(it, N))
            for it in items:
                good = [e for e in samples[it] if not e.get("error")] or samples[it]
                entry = {k: statistics.median(e[k] for e in good)
                         for k in ("started", "start_all_ms", "start_per_container_ms", "mem_delta_bytes",
                                   "mem_per_container_kib", "delete_all_ms", "delete_failures")}
                entry["repeats"] = samples[it]
                errs = [e["error"] for e in samples[it] if e.get("error")]
                if errs:
                    entry["error"] = f"{len(errs)}/{len(samples[it])} rounds failed, first: {errs[0]}"
                dens.setdefault(str(N), {})[it] = entry

    def density_round(self, it, N):
        """One round: N detached containers, memory before and after, then delete all of them."""
        mem0 = self.settle_mem()
        ids = []
        t0 = time.perf_counter_ns()
        fail = None
        for j in range(N):
            cid = self.new_id("d")
            r = spawn(self.rt[it] + ["run", "-d", "--bundle", self.bundles["sleep"], cid], self.timeout,
                      err=self.err)
            if r.rc != 0:
                fail = f"container {j + 1}/{N}: rc={r.rc}: {r.err[-300:]}"
                subprocess.run(self.rt[it] + ["delete", "-f", cid], capture_output=True)
                break
            ids.append(cid)
        t_start = (time.perf_counter_ns() - t0) / 1e6
        time.sleep(0.5)
        mem1 = self.mem_bytes()
        t0 = time.perf_counter_ns()
        del_fail = 0
        for cid in ids:
            r = spawn(self.rt[it] + ["delete", "-f", cid], self.timeout, err=self.err)
            if r.rc != 0:
                del_fail += 1
        t_del = (time.perf_counter_ns() - t0) / 1e6
        entry = {
            "started": len(ids),
            "start_all_ms": round(t_start, 2),
            "start_per_container_ms": round(t_start / max(1, len(ids)), 3),
            "mem_delta_bytes": mem1 - mem0,
            "mem_per_container_kib": round((mem1 - mem0) / 1024 / max(1, len(ids)), 1),
            "delete_all_ms": round(t_del, 2),
            "delete_failures": del_fail,
        }
        if fail:
            entry["error"] = fail
            log(f"!! {it} density N={N}: {fail}")
        return entry

    def sizes(self):
        sz = {}
        for name in RUNTIMES:
            b = self.bin[name]
            libs = 0
            names = []
            ldd = subprocess.run(["ldd", b], capture_output=True, text=True).stdout
            for line in ldd.splitlines():
                m = re.search(r"=>\s+(/\S+)", line) or re.match(r"\s*(/\S+)", line)
                if m and os.path.exists(m.group(1)):
                    p = os.path.realpath(m.group(1))
                    libs += os.stat(p).st_size
                    names.append(os.path.basename(m.group(1)))
            sz[name] = {"path": b, "bytes": os.stat(b).st_size, "shared_libs_bytes": libs, "shared_libs": names,
                        "static": "not a dynamic executable" in ldd or "statically linked" in ldd}
        self.res["sizes"] = sz
        self.warm_files = sorted({os.path.realpath(p) for n in RUNTIMES for p in [self.bin[n]]} |
                                 {os.path.realpath(p) for p in re.findall(r"=>\s+(/\S+)", "".join(
                                     subprocess.run(["ldd", self.bin[n]], capture_output=True, text=True).stdout
                                     for n in RUNTIMES)) if os.path.exists(p)} |
                                 {os.path.realpath(self.a.busybox)})

    # ------------------------------------------------------------- metadata
    def meta(self):
        m = self.res["meta"]
        m["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        m["env"] = self.a.env
        m["hostname"] = socket.gethostname()
        m["kernel"] = platform.release()
        m["os"] = sh(". /etc/os-release && echo $PRETTY_NAME")
        m["cpu"] = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-").strip()
        m["nproc"] = os.cpu_count()
        m["mem_total_mib"] = int(sh("awk '/MemTotal/{print $2}' /proc/meminfo") or 0) // 1024
        m["virt"] = sh("systemd-detect-virt 2>/dev/null || true") or "unknown"
        m["loadavg_at_start"] = open("/proc/loadavg").read().split()[:3]
        m["runs"] = self.a.runs
        m["density"] = self.a.density
        m["density_repeats"] = self.a.density_repeats
        m["quick"] = self.a.quick
        m["versions"] = {
            "bulkhead": sh(f"{self.a.bulkhead} --version | head -2 | tr '\\n' ' '"),
            "crun": sh("crun --version | head -1"),
            "runc": sh("runc --version | head -1"),
            "python": platform.python_version(),
        }
        src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        m["git_commit"] = sh(f"git -C {src} rev-parse HEAD")
        m["git_dirty_files"] = sh(f"git --no-optional-locks -C {src} status --porcelain -uno | wc -l")
        m["bulkhead_binary"] = self.a.bulkhead
        m["bulkhead_sha256"] = sh(f"sha256sum {self.a.bulkhead} | cut -c1-16")
        m["bulkhead_mtime"] = datetime.datetime.fromtimestamp(
            os.stat(self.a.bulkhead).st_mtime, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def summarize_all(self):
        s = self.res["summary"]
        for key, per in self.res["timings"].items():
            if key == "rss_kb":
                s[key] = {n: {"median": statistics.median(v), "max": max(v), "n": len(v)} for n, v in per.items()}
                continue
            s[key] = {}
            for n, t in per.items():
                e = {"ms": summarize(t["ms"]), "cpu_ms": summarize(t["cpu_ms"]), "user_ms": summarize(t["user_ms"]),
                     "sys_ms": summarize(t["sys_ms"]), "fail": t["fail"]}
                if "first_error" in t:
                    e["first_error"] = t["first_error"]
                s[key][n] = e
        s["load_at_end"] = open("/proc/loadavg").read().split()[:3]

    def run(self):
        t0 = time.time()
        self.meta()
        self.cgroup_setup()
        self.make_bundle()
        self.runtime_cmds()
        self.sizes()
        self.verify()
        for name, why in self.failed.items():
            self.res["errors"].append(f"{name}: {why}")
        phases = [self.bench_run, self.bench_lifecycle, self.bench_exec, self.bench_rss,
                  self.bench_instructions, self.bench_density]
        for ph in phases:
            t = time.time()
            try:
                ph()
            except Exception as e:  # noqa: BLE001 - a broken phase is recorded, never fatal
                self.res["errors"].append(f"{ph.__name__}: {type(e).__name__}: {e}")
                log(f"!! {ph.__name__}: {type(e).__name__}: {e}")
            self.res["meta"].setdefault("phase_seconds", {})[ph.__name__] = round(time.time() - t, 1)
        self.leave_own_memcg()
        self.summarize_all()
        self.res["meta"]["total_seconds"] = round(time.time() - t0, 1)
        shutil.rmtree(self.work, ignore_errors=True)
        if self.work_fs == "tmpfs":
            subprocess.run(["umount", "-l", self.work])
        shutil.rmtree(self.work, ignore_errors=True)
        return self.res


# --------------------------------------------------------------------- report
def fmt_ms(x):
    if x is None:
        return "n/a"
    return f"{x:.3f}" if x < 1 else (f"{x:.2f}" if x < 100 else f"{x:.0f}")


def ratio(a, b):
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or not b:
        return "n/a"
    return f"{a / b:.2f}x"


def human_bytes(n):
    if not isinstance(n, (int, float)):
        return str(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def render_md(res):
    m, s, st = res["meta"], res["summary"], res["setup"]
    L = []
    where = "cgroup v2 VM (tests/vm, QEMU TCG)" if m["env"] == "vm" else "host"
    L.append(f"### {where}: {m['date']}")
    L.append("")
    L.append(f"Machine: `{m['hostname']}`, {m['cpu']}, {m['nproc']} CPUs, {m['mem_total_mib']} MiB, "
             f"kernel {m['kernel']}, {m['os']}, virt={m['virt']}, load at start {' '.join(m['loadavg_at_start'])}. "
             f"bulkhead {m['git_commit'][:10]} ({m['git_dirty_files']} modified tracked files), "
             f"{m['versions']['crun']}, {m['versions']['runc']}. "
             f"{m['runs']} runs per timing row{' (quick)' if m['quick'] else ''}, took {m.get('total_seconds', '?')} s.")
    L.append("")
    L.append(f"cgroups: {st.get('cgroup_view')}; controllers: `{st.get('cgroup2_controllers') or '-'}`; "
             f"resources: `{json.dumps(st['bundle'].get('resources'))}`; crun cgroup manager: "
             f"{st.get('crun_cgroup_manager')}. {st['bundle'].get('filesystem', '')}. "
             f"bpffs: {st.get('bpffs', 'not recorded')}.")
    L.append("")
    names = RUNTIMES
    L.append("| metric | " + " | ".join(names) + " | bulkhead/crun | runc/crun |")
    L.append("|---|" + "---|" * (len(names) + 2))

    def row(label, vals):
        L.append(f"| {label} | " + " | ".join(v[0] for v in vals) + f" | {ratio(vals[0][1], vals[1][1])} | "
                 f"{ratio(vals[2][1], vals[1][1])} |")

    def timing(key, stat="median", field="ms"):
        out = []
        for n in names:
            e = s.get(key, {}).get(n)
            if not e or not e.get(field):
                err = (e or {}).get("first_error")
                out.append(("FAILED" if err else "n/a", None))
                continue
            v = e[field][stat]
            extra = f" ({e['fail']} failed)" if e.get("fail") else ""
            out.append((fmt_ms(v) + extra, v))
        return out

    run = s.get("run", {})
    row("run /bin/true end to end, median ms", timing("run"))
    row("run /bin/true end to end, p90 ms", timing("run", "p90"))
    ff = (run.get("floor-unshare") or {}).get("ms") or {}
    fu = ff.get("median")
    row("run median ÷ unshare floor", [(f"{v / fu:.1f}x" if v and fu else "n/a", v / fu if v and fu else None)
                                       for _, v in timing("run")])
    row("run median − unshare floor, ms",
        [(fmt_ms(v - fu) if v and fu else "n/a", (v - fu) if v and fu else None) for _, v in timing("run")])
    # Means: the kernel samples the user/sys split per tick, so per-run values are coarse and only
    # their mean is meaningful.
    row("run CPU user+sys (whole process tree), mean ms", timing("run", "mean", field="cpu_ms"))
    row("… of which user (runtime code, linking), mean ms", timing("run", "mean", field="user_ms"))
    row("… of which sys (kernel), mean ms", timing("run", "mean", field="sys_ms"))
    for key, label in (("create", "create"), ("start", "start"), ("delete", "delete"),
                       ("exec", "exec /bin/true into running")):
        med = timing(key)
        p90 = timing(key, "p90")
        exec_note = res["setup"].get("exec", {})
        vals = []
        for i, n in enumerate(names):
            if key == "exec" and not str(exec_note.get(n, "ok")).startswith("ok"):
                vals.append((exec_note.get(n, "n/a").split(":")[0], None))
            else:
                vals.append((f"{med[i][0]} / {p90[i][0]}" if med[i][1] is not None else med[i][0], med[i][1]))
        row(f"{label}, median / p90 ms", vals)
    rss = s.get("rss_kb", {})
    row("peak RSS of the runtime (`time -f %M`), KiB",
        [(f'{rss[n]["median"]:.0f}' if n in rss else "n/a", rss[n]["median"] if n in rss else None) for n in names])
    sz = res.get("sizes", {})
    row("binary size", [(human_bytes(sz[n]["bytes"]), sz[n]["bytes"]) if n in sz else ("n/a", None) for n in names])
    row("binary + shared libs (ldd)", [(human_bytes(sz[n]["bytes"] + sz[n]["shared_libs_bytes"]),
                                         sz[n]["bytes"] + sz[n]["shared_libs_bytes"]) if n in sz else ("n/a", None)
                                        for n in names])
    ins = res.get("instructions", {}).get("per_runtime", {})

    def ins_cell(n):
        v = ins.get(n, "n/a")
        if isinstance(v, (int, float)):
            return (f"{v / 1e6:.1f} M", v)
        return ("n/a", None)
    row("instructions per run", [ins_cell(n) for n in names])
    st_ins = res.get("instructions", {}).get("state_per_runtime")
    if st_ins:
        row("instructions per `state` (callgrind, user space)",
            [(f"{st_ins[n] / 1e6:.2f} M", st_ins[n]) if isinstance(st_ins.get(n), int) else ("n/a", None)
             for n in names])
    for N, per in res.get("density", {}).items():
        def dv(n, k, f=fmt_ms):
            e = per.get(n)
            if not e:
                return ("n/a", None)
            if e.get("error") and not e.get("started"):
                return ("FAILED", None)
            v = e[k]
            tail = f" (only {e['started']}/{N})" if e.get("error") else ""
            return (f(v) + tail, v)
        row(f"density N={N}: start all, ms", [dv(n, "start_all_ms") for n in names])
        row(f"density N={N}: memory per container, KiB",
            [dv(n, "mem_per_container_kib", lambda v: f"{v:.0f}") for n in names])
        row(f"density N={N}: delete all, ms", [dv(n, "delete_all_ms") for n in names])
    L.append("")
    fl = run
    floor_txt = []
    for k in ("floor-fork", "floor-unshare"):
        e = (fl.get(k) or {}).get("ms")
        if e:
            floor_txt.append(f"{k}: median {fmt_ms(e['median'])} ms, p90 {fmt_ms(e['p90'])} ms")
    L.append("Floors (kernel's own cost, same timing harness): " + "; ".join(floor_txt) + ". "
             + st.get("floors", {}).get("floor-unshare", ""))
    L.append("")
    if m["env"] == "vm":
        L.append("In the VM the memory reading is system-wide and moves by a few MiB between readings, so "
                 "the N=10 memory row is noise; under TCG, "
                 "background kernel work (network namespace teardown) adds seconds at random.")
        L.append("")
    L.append(f"Memory per container: {st.get('memory_source')}, delta after starting N / N; density cells are "
             f"medians of {m.get('density_repeats', 1)} interleaved round(s). "
             f"Instructions: {res.get('instructions', {}).get('method')}.")
    notes = []
    for n in names:
        e = res["setup"].get("exec", {}).get(n)
        if e and e != "ok":
            notes.append(f"exec {n}: {e}")
    for k, per in s.items():
        if isinstance(per, dict):
            for n, e in per.items():
                if isinstance(e, dict) and e.get("first_error"):
                    notes.append(f"{k} {n}: {e.get('fail')} failures, first: {e['first_error'][:300]}")
    for N, per in res.get("density", {}).items():
        for n, e in per.items():
            if e.get("error"):
                notes.append(f"density N={N} {n}: {e['error'][:300]}")
    for key in ("per_runtime", "state_per_runtime"):
        for n, v in res.get("instructions", {}).get(key, {}).items():
            if isinstance(v, str) and v != "n/a":
                notes.append(f"instructions{' (state)' if key != 'per_runtime' else ''} {n}: {v}")
    for n, v in res.get("verify", {}).items():
        if v.get("limits"):
            notes.append(f"limits applied by {n}: {json.dumps(v['limits'])}")
    notes += res.get("errors", [])
    if notes:
        L.append("")
        L.append("Notes and failures:")
        L.append("")
        for x in notes:
            L.append(f"- {x.replace(chr(10), ' ')}")
    L.append("")
    return "\n".join(L)


def write_outputs(res, out_dir, readme):
    os.makedirs(out_dir, exist_ok=True)
    day = res["meta"]["date"][:10]
    suffix = res["meta"]["env"] + ("-quick" if res["meta"]["quick"] else "")
    base = os.path.join(out_dir, f"{day}-{suffix}")
    with open(base + ".json", "w") as f:
        json.dump(res, f, indent=1)
    md = render_md(res)
    with open(base + ".md", "w") as f:
        f.write(md)
    print(md)
    log(f"wrote {base}.json and {base}.md")
    if readme and os.path.exists(readme):
        env = res["meta"]["env"]
        begin, end = f"<!-- latest-{env} begin -->", f"<!-- latest-{env} end -->"
        text = open(readme).read()
        if begin in text and end in text:
            pre, rest = text.split(begin, 1)
            _, post = rest.split(end, 1)
            link = f"\n(from `bench/results/{os.path.basename(base)}.json`)\n\n"
            with open(readme, "w") as f:
                f.write(pre + begin + link + md + "\n" + end + post)
            log(f"updated {readme}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--env", choices=["host", "vm"], default="host")
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--rss-runs", type=int, default=10)
    p.add_argument("--density", default="10,100,500")
    p.add_argument("--density-repeats", type=int, default=3,
                   help="rounds per runtime and N (interleaved); the table shows medians")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--bulkhead", default="build-bench/cli/bulkhead")
    p.add_argument("--busybox", default="/bin/busybox")
    p.add_argument("--workdir", default="/tmp")
    p.add_argument("--no-limits", action="store_true")
    p.add_argument("--workdir-fs", choices=["tmpfs", "keep"], default="tmpfs")
    p.add_argument("--json-stdout", action="store_true", help="print the result JSON on stdout only (VM)")
    p.add_argument("--render", metavar="JSON", help="only write .json/.md from a result JSON (or VM output)")
    p.add_argument("--out-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    p.add_argument("--readme", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "README.md"))
    a = p.parse_args()
    if a.render:
        text = open(a.render, errors="replace").read()
        start = text.find("{")
        res = json.loads(text[start:text.rfind("}") + 1])
        write_outputs(res, a.out_dir, a.readme)
        return
    a.density = [int(x) for x in a.density.split(",") if x.strip()]
    a.bulkhead = os.path.abspath(a.bulkhead)
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    res = Bench(a).run()
    if a.json_stdout:
        sys.stdout.write(json.dumps(res) + "\n")
        sys.stdout.flush()
    else:
        write_outputs(res, a.out_dir, a.readme)


if __name__ == "__main__":
    main()
