#!/usr/bin/env python3
"""Hosting benchmark of issue 11 item 9: bulkheadd vs LXC 5 (see bench/daemon/README.md).

Runs as root inside a private mount namespace (run.sh sets that up). Measures
  1. create-to-running of a templated busybox system container through the API
     (`bulkheadctl create NAME --template busybox --start`), median and p90, against
     LXC's `lxc-copy -s -B overlay` + `lxc-start -d` + `lxc-wait -s RUNNING` on the same rootfs;
  2. memory per idle container at N containers (cgroup memory.current of the containers plus
     RSS/PSS of the daemon and of every per-container monitor), and the same for LXC.
Writes one JSON document (all raw samples) to --out.
"""
import argparse
import concurrent.futures as cf
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time

T0 = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def run(cmd, check=True, timeout=600, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {(p.stderr or p.stdout).strip()[-600:]}")
    return p


def timed(cmd, timeout=600):
    t = time.perf_counter()
    p = run(cmd, check=False, timeout=timeout)
    dt = (time.perf_counter() - t) * 1000.0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {(p.stderr or p.stdout).strip()[-600:]}")
    return dt


def pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return None
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(xs):
    if not xs:
        return None
    return {"n": len(xs), "median": statistics.median(xs), "p90": pct(xs, 0.9), "min": min(xs), "max": max(xs),
            "mean": statistics.fmean(xs)}


def read_kib(path, key):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def proc_mem(pid):
    """RSS and PSS in KiB of one process (smaps_rollup)."""
    rss = read_kib(f"/proc/{pid}/smaps_rollup", "Rss")
    pss = read_kib(f"/proc/{pid}/smaps_rollup", "Pss")
    if rss is None:
        rss = read_kib(f"/proc/{pid}/status", "VmRSS")
    return rss or 0, pss if pss is not None else (rss or 0)


def smaps_breakdown(pid):
    """What one process's memory is made of: smaps_rollup, and RSS/PSS/anon per mapping name."""
    out = {"rollup_kib": {}, "by_mapping_kib": {}}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                p = line.split()
                if len(p) == 3 and p[2] == "kB":
                    out["rollup_kib"][p[0].rstrip(":")] = int(p[1])
        cur = None
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                p = line.split()
                if "-" in p[0] and len(p) >= 5 and not p[0].endswith(":"):
                    name = p[5] if len(p) > 5 else "[anon]"
                    cur = out["by_mapping_kib"].setdefault(os.path.basename(name) if name.startswith("/") else name,
                                                           {"rss": 0, "pss": 0, "anon": 0, "private_dirty": 0})
                elif cur is not None and len(p) == 3 and p[2] == "kB":
                    k = {"Rss:": "rss", "Pss:": "pss", "Anonymous:": "anon", "Private_Dirty:": "private_dirty"}.get(p[0])
                    if k:
                        cur[k] += int(p[1])
        out["by_mapping_kib"] = {k: v for k, v in sorted(out["by_mapping_kib"].items(), key=lambda kv: -kv[1]["rss"])
                                 if v["rss"]}
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return out


def pids_where(pred):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
            exe = os.readlink(f"/proc/{d}/exe")
        except (FileNotFoundError, ProcessLookupError, PermissionError, OSError):
            continue
        if pred(int(d), cmd, exe):
            out.append(int(d))
    return out


def meminfo_used_kib():
    mt = read_kib("/proc/meminfo", "MemTotal")
    ma = read_kib("/proc/meminfo", "MemAvailable")
    return mt - ma


def drop_caches_note():
    # Not dropping caches: the template's page cache is shared by all containers and is part of what
    # a real host pays once. memory.current charges a page to the first cgroup that touched it.
    pass


def cg_current(path):
    try:
        with open(os.path.join(path, "memory.current")) as f:
            return int(f.read()) // 1024
    except (FileNotFoundError, OSError):
        return None


def cgroup2_root():
    """Where a cgroup2 with the memory controller is mounted, or None (v1/v2 hybrid host)."""
    try:
        with open("/sys/fs/cgroup/cgroup.controllers") as f:
            if "memory" in f.read().split():
                return "/sys/fs/cgroup"
    except FileNotFoundError:
        pass
    return None


def stop_private_lxcfs():
    """bulkheadd starts lxcfs when none is mounted, and leaves it running by design. On the host the bench runs
    in a private mount namespace of its own (run.sh): an lxcfs in that namespace is this run's; stop it."""
    me = os.readlink("/proc/self/ns/mnt")
    # Private when it differs from the namespace run.sh was started in: the parent's (unshare execs this
    # script, so the parent is run.sh's shell). Not pid 1's: this host's sandbox hides /proc/1/ns, and
    # giving up there left an lxcfs behind after every host run.
    try:
        if me == os.readlink(f"/proc/{os.getppid()}/ns/mnt"):
            return
    except OSError:
        return
    for pid in pids_where(lambda pid, cmd, exe: os.path.basename(exe) == "lxcfs"):
        try:
            if os.readlink(f"/proc/{pid}/ns/mnt") == me:
                os.kill(pid, signal.SIGKILL)  # lxcfs ignores SIGTERM; its mount dies with the namespace
                log(f"stopped lxcfs {pid} of this run's mount namespace")
        except OSError:
            pass


# --------------------------------------------------------------------------------- bulkhead
class Bulkhead:
    name = "bulkhead"

    def __init__(self, a, work, rootfs):
        self.a = a
        self.bin = a.bin
        self.root = os.path.join(work, "bhroot")
        self.sock = os.path.join(work, "bulkheadd.sock")
        self.logf = open(os.path.join(work, "bulkheadd.log"), "ab")
        self.rootfs = rootfs
        self.cgparent = "bulkhead-bench"
        self.daemon = None
        self.monitor_exe = os.path.realpath(os.path.join(self.bin, "bulkhead-monitor"))
        self.limits = []
        if a.limits:
            self.limits = ["--memory", "64M", "--pids", "100"]

    def ctl(self, *args, check=True, timeout=600):
        return run([os.path.join(self.bin, "bulkheadctl"), "--socket", self.sock, *args], check=check,
                   timeout=timeout)

    def setup(self):
        self.daemon = subprocess.Popen(
            [os.path.join(self.bin, "bulkheadd"), "--root", self.root, "--socket", self.sock,
             "--cgroup-parent", "/" + self.cgparent, "--privileged-default"], stdout=self.logf, stderr=self.logf,
            stdin=subprocess.DEVNULL)
        for _ in range(600):
            if self.ctl("list", check=False).returncode == 0:
                break
            if self.daemon.poll() is not None:
                raise RuntimeError(f"bulkheadd exited {self.daemon.returncode}")
            time.sleep(0.05)
        else:
            raise RuntimeError("bulkheadd did not come up")
        self.ctl("template", "import", "busybox", self.rootfs)
        v = run([os.path.join(self.bin, "bulkheadd"), "--version"], check=False)
        self.version = (v.stdout or v.stderr).strip().splitlines()[0] if (v.stdout or v.stderr) else "?"

    def create_start(self, name):
        return timed([os.path.join(self.bin, "bulkheadctl"), "--socket", self.sock, "create", name, "--template",
                      "busybox", *self.limits, "--start"])

    def state(self, name):
        i = json.loads(self.ctl("info", name, "--json").stdout)
        return i.get("state"), i.get("pid")

    def destroy(self, name):
        self.ctl("destroy", name, "--force")

    def count_running(self):
        return sum(1 for c in json.loads(self.ctl("list", "--json").stdout) if c.get("state") == "running")

    def cgroup_dir(self, cgroot, name):
        return os.path.join(cgroot, self.cgparent, name)

    def helpers(self):
        """(daemon pids, per-container helper pids)"""
        mons = pids_where(lambda pid, cmd, exe: os.path.realpath(exe) == self.monitor_exe)
        return [self.daemon.pid], mons

    def cleanup(self):
        p = self.ctl("list", "-q", check=False)
        names = p.stdout.split() if p.returncode == 0 else []
        with cf.ThreadPoolExecutor(4) as ex:
            list(ex.map(lambda n: self.ctl("destroy", n, "--force", check=False), names))
        return names

    def teardown(self):
        if self.daemon and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(30)
            except subprocess.TimeoutExpired:
                self.daemon.kill()


# -------------------------------------------------------------------------------------- LXC
def lxc_log_gaps(path, k=6):
    """The k largest pauses between consecutive lines of an LXC DEBUG log (where a start spends its time)."""
    rows = []
    try:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) > 3:
                    try:
                        ts = datetime.datetime.strptime(p[2], "%Y%m%d%H%M%S.%f").timestamp()
                    except ValueError:
                        continue
                    rows.append((ts, line.strip()[:240]))
    except OSError:
        return []
    gaps = [(round((rows[i][0] - rows[i - 1][0]) * 1000.0, 1), rows[i - 1][1], rows[i][1]) for i in range(1, len(rows))]
    total = round((rows[-1][0] - rows[0][0]) * 1000.0, 1) if rows else 0
    return {"log_span_ms": total, "gaps": [{"ms": g[0], "after": g[1], "before": g[2]} for g in
                                           sorted(gaps, reverse=True)[:k]]}


def lxc_cgroups():
    out = []
    for top, dirs, _ in os.walk("/sys/fs/cgroup"):
        for d in dirs:
            if d.startswith("lxc."):
                out.append(os.path.join(top, d))
        dirs[:] = [d for d in dirs if d.startswith("lxc.") or top == "/sys/fs/cgroup"]
    return out


class Lxc:
    name = "lxc"

    def __init__(self, a, work, rootfs, lxcfs_hook=True):
        self.a = a
        self.lxcfs_hook = lxcfs_hook
        self.name = "lxc" if lxcfs_hook else "lxc-nohook"
        self.prefix = "" if lxcfs_hook else "n"  # cgroups are lxc.payload.NAME whatever the lxcpath
        self.path = os.path.join(work, self.name)
        self.rootfs = rootfs
        self.cg_before = set(lxc_cgroups())
        v = run(["lxc-start", "--version"], check=False)
        self.version = "lxc " + v.stdout.strip()

    def lxc(self, tool, *args, check=True, timeout=600):
        return run([tool, "-P", self.path, *args], check=check, timeout=timeout)

    def setup(self):
        base = os.path.join(self.path, "base")
        os.makedirs(base, exist_ok=True)
        os.chmod(self.path, 0o755)
        lines = [
            "lxc.include = /usr/share/lxc/config/common.conf",
            f"lxc.rootfs.path = dir:{self.rootfs}",
            "lxc.uts.name = base",
            "lxc.init.cmd = /sbin/init",
            # bulkhead's containers get a new network namespace with lo only: LXC's "empty".
            "lxc.net.0.type = empty",
            "lxc.apparmor.profile = unconfined",
            "lxc.tty.max = 0",
            "lxc.log.level = ERROR",
        ]
        if self.a.limits:
            lines += ["lxc.cgroup2.memory.max = 64M", "lxc.cgroup2.pids.max = 100"]
        if not self.lxcfs_hook:
            # Debian's common.conf.d/00-lxcfs.conf adds lxcfs's mount hook (a shell script); an empty value
            # clears the mount hooks: the variant shows what LXC's start costs without it.
            lines.append("lxc.hook.mount =")
        with open(os.path.join(base, "config"), "w") as f:
            f.write("\n".join(lines) + "\n")

    def create_start(self, name, phases=None, level="ERROR"):
        name = self.prefix + name
        t = time.perf_counter()
        self.lxc("lxc-copy", "-n", "base", "-N", name, "-s", "-B", "overlay")
        t1 = time.perf_counter()
        self.lxc("lxc-start", "-n", name, "-d", "-l", level, "-o", os.path.join(self.path, name + ".log"))
        self.lxc("lxc-wait", "-n", name, "-s", "RUNNING", "-t", "60")
        t2 = time.perf_counter()
        if phases is not None:
            phases.append({"copy": (t1 - t) * 1000.0, "start_wait": (t2 - t1) * 1000.0})
        return (t2 - t) * 1000.0

    def state(self, name):
        name = self.prefix + name
        out = [x for x in self.lxc("lxc-info", "-n", name, "-s", "-p", "-H").stdout.split() if not x.endswith(":")]
        st = [x for x in out if not x.isdigit()]
        pid = [int(x) for x in out if x.isdigit()]
        return (st[0].lower() if st else "?"), (pid[0] if pid else 0)

    def destroy(self, name):
        name = self.prefix + name
        self.lxc("lxc-stop", "-n", name, "-k", check=False, timeout=120)
        self.lxc("lxc-destroy", "-n", name, "-f", check=False, timeout=120)

    def cgroup_dir(self, cgroot, name):
        return os.path.join(cgroot, "lxc.payload." + self.prefix + name)

    def count_running(self):
        return len([n for n in self.lxc("lxc-ls", "-1", "--running").stdout.split() if n != "base"])

    def helpers(self):
        mons = pids_where(lambda pid, cmd, exe: cmd and cmd[0].startswith(b"[lxc monitor]"))
        return [], mons

    def cleanup(self):
        p = self.lxc("lxc-ls", "-1", check=False)
        names = [n[len(self.prefix):] for n in p.stdout.split() if n != "base"]
        with cf.ThreadPoolExecutor(4) as ex:
            list(ex.map(self.destroy, names))
        return names

    def teardown(self):
        # LXC leaves an empty lxc.pivot (and, after a failure, lxc.payload.*/lxc.monitor.*) cgroup in each
        # v1 hierarchy on a hybrid host; remove the empty ones this run created.
        for d in sorted(set(lxc_cgroups()) - self.cg_before, key=len, reverse=True):
            try:
                os.rmdir(d)
            except OSError:
                pass


# ------------------------------------------------------------------------------- measuring
def measure_timing(systems, runs, warmup):
    res = {s.name: {"samples_ms": [], "errors": [], "phases": []} for s in systems}
    for i in range(-warmup, runs):
        order = systems[i % len(systems):] + systems[:i % len(systems)]
        for s in order:
            r = res[s.name]
            if r.get("disabled"):
                continue
            name = f"t{i + warmup}"
            try:
                if isinstance(s, Lxc):
                    ph = []
                    dt = s.create_start(name, ph)
                else:
                    ph = None
                    dt = s.create_start(name)
                st, pid = s.state(name)
                if st != "running" or not pid:
                    raise RuntimeError(f"{name} is {st} (pid {pid}) after create/start")
                if i >= 0:
                    r["samples_ms"].append(dt)
                    if ph:
                        r["phases"].append(ph[0])
            except Exception as e:  # recorded, not hidden
                r["errors"].append(str(e))
                log(f"{s.name}: {e}")
                if len(r["errors"]) >= 3 and not r["samples_ms"]:
                    r["disabled"] = True
                    log(f"{s.name}: disabled after 3 failures")
            try:
                s.destroy(name)
            except Exception as e:
                r["errors"].append(f"destroy {name}: {e}")
        if i >= 0 and (i + 1) % 10 == 0:
            log("timing: " + ", ".join(
                f"{k} {statistics.median(v['samples_ms']):.1f} ms" for k, v in res.items() if v["samples_ms"]))
    for k, v in res.items():
        v["summary"] = summary(v["samples_ms"])
        if v["phases"]:
            v["phases_summary"] = {p: summary([x[p] for x in v["phases"]]) for p in v["phases"][0]}
    return res


def sample_memory(s, names, cgroot, settle):
    time.sleep(settle)
    cg = {}
    for n in names:
        c = cg_current(s.cgroup_dir(cgroot, n))
        if c is not None:
            cg[n] = c
    daemons, mons = s.helpers()
    dm = [proc_mem(p) for p in daemons]
    mm = [proc_mem(p) for p in mons]
    n = len(names)
    d_rss = sum(x[0] for x in dm)
    d_pss = sum(x[1] for x in dm)
    m_rss = sum(x[0] for x in mm)
    m_pss = sum(x[1] for x in mm)
    cg_sum = sum(cg.values())
    out = {
        "n": n, "cgroups_found": len(cg), "cgroup_memory_current_kib": cg_sum,
        "cgroup_per_container_kib": cg_sum / n if n else None,
        "daemon_rss_kib": d_rss, "daemon_pss_kib": d_pss,
        "monitors": len(mm), "monitors_rss_kib": m_rss, "monitors_pss_kib": m_pss,
        "monitor_rss_each_kib": summary([x[0] for x in mm]), "monitor_pss_each_kib": summary([x[1] for x in mm]),
        "added_per_container_rss_kib": (d_rss + m_rss) / n if n else None,
        "added_per_container_pss_kib": (d_pss + m_pss) / n if n else None,
        "total_per_container_rss_kib": (cg_sum + d_rss + m_rss) / n if n else None,
        "total_per_container_pss_kib": (cg_sum + d_pss + m_pss) / n if n else None,
        "system_used_kib": meminfo_used_kib(),
        "cgroup_sample_kib": dict(list(cg.items())[:5]),
        "daemon_smaps": smaps_breakdown(daemons[0]) if daemons else None,
        "monitor_smaps": smaps_breakdown(mons[0]) if mons else None,
    }
    # What one container's memory.current is made of (memory.stat of the first one).
    if names:
        try:
            with open(os.path.join(s.cgroup_dir(cgroot, names[0]), "memory.stat")) as f:
                st = dict(line.split() for line in f)
            out["memory_stat_first_kib"] = {k: int(st[k]) // 1024 for k in (
                "anon", "file", "kernel", "kernel_stack", "pagetables", "slab", "sock", "shmem", "file_mapped")
                if k in st}
        except (FileNotFoundError, OSError, ValueError):
            pass
    return out


def measure_density(s, ns, cgroot, settle, parallel, budget_s=0):
    r = {"points": [], "errors": [], "budget_s": budget_s}
    deadline = time.monotonic() + budget_s if budget_s else None
    names = []
    base_used = meminfo_used_kib()
    r["system_used_before_kib"] = base_used
    t_all = time.perf_counter()
    for target in ns:
        t = time.perf_counter()
        todo = [f"d{i}" for i in range(len(names), target)]

        def one(n):
            s.create_start(n)
            return n

        def one_in_time(n):
            if deadline and time.monotonic() > deadline:
                return None
            return one(n)

        with cf.ThreadPoolExecutor(parallel) as ex:
            futs = {ex.submit(one_in_time, n): n for n in todo}
            for f in cf.as_completed(futs):
                try:
                    if f.result():
                        names.append(f.result())
                except Exception as e:
                    r["errors"].append(f"{futs[f]}: {e}")
                if len(names) % 50 == 0:
                    log(f"{s.name}: {len(names)} running")
        if len(names) < target:
            msg = f"stopped at N={len(names)} of {target}: time budget of this run used up"
            r["errors"].append(msg)
            log(f"{s.name}: {msg}")
            if not names:
                break
        elapsed = time.perf_counter() - t
        if r["errors"]:
            log(f"{s.name}: {len(r['errors'])} creates failed, first: {r['errors'][0]}")
        try:
            running = s.count_running()
        except Exception as e:
            r["errors"].append(f"count running: {e}")
            running = None
        m = sample_memory(s, sorted(names), cgroot, settle)
        m["target_n"] = target
        m["running"] = running
        m["create_start_all_s"] = elapsed
        m["system_used_delta_per_container_kib"] = (m["system_used_kib"] - base_used) / len(names) if names else None
        r["points"].append(m)
        log(f"{s.name} N={len(names)} running={running}: cgroups {m['cgroup_per_container_kib']:.0f} KiB/ct, "
            f"added PSS {m['added_per_container_pss_kib']:.0f} KiB/ct (RSS {m['added_per_container_rss_kib']:.0f}), "
            f"daemon RSS {m['daemon_rss_kib']} KiB, system {m['system_used_delta_per_container_kib']:.0f} KiB/ct")
        if deadline and time.monotonic() > deadline:
            break
    r["create_all_s"] = time.perf_counter() - t_all
    t = time.perf_counter()
    if not s.a.keep:
        with cf.ThreadPoolExecutor(parallel) as ex:
            for n, f in [(n, ex.submit(s.destroy, n)) for n in names]:
                try:
                    f.result()
                except Exception as e:
                    r["errors"].append(f"destroy {n}: {e}")
        r["destroy_all_s"] = time.perf_counter() - t
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="dir with bulkheadd, bulkheadctl, bulkhead-monitor")
    ap.add_argument("--work", required=True, help="scratch dir (tmpfs)")
    ap.add_argument("--rootfs-script", required=True)
    ap.add_argument("--rootfs-src", help="a rootfs made by the script already; copied instead of rebuilt")
    ap.add_argument("--lxc-density", default=None, help="N for LXC (default: --density)")
    ap.add_argument("--where", choices=["host", "vm"], required=True)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--density", default="", help="comma-separated N, e.g. 100,500; empty: none")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds idle before sampling memory")
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--budget", type=float, default=0, help="seconds for bulkhead's creates in density (0: none)")
    ap.add_argument("--lxc-budget", type=float, default=0, help="seconds for LXC's creates in density (0: none)")
    ap.add_argument("--limits", action="store_true", help="--memory 64M --pids 100 on every container")
    ap.add_argument("--no-lxc", action="store_true")
    ap.add_argument("--no-lxc-nohook", action="store_true", help="skip the LXC variant without the lxcfs mount hook")
    ap.add_argument("--keep", action="store_true", help="do not destroy the density containers (VM)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    os.makedirs(a.work, exist_ok=True)
    rootfs = os.path.join(a.work, "rootfs")
    if a.rootfs_src:  # built on the host beforehand: in the VM the script's ~400 forks take minutes
        run(["cp", "-a", a.rootfs_src, rootfs])
    else:
        run(["sh", a.rootfs_script, rootfs])
    # LXC gets its own copy of the same tree (same files, its own directory: nothing shared by accident).
    # (lxc-copy wants the base container's rootfs under a path that includes its name.)
    def lxc_rootfs(name):
        d = os.path.join(a.work, name, "base", "rootfs")
        os.makedirs(os.path.dirname(d), exist_ok=True)
        shutil.copytree(rootfs, d, symlinks=True)
        return d

    doc = {
        "bench": "daemon", "where": a.where, "quick": a.quick,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": {"kernel": platform.release(), "cpus": os.cpu_count(),
                 "mem_total_kib": read_kib("/proc/meminfo", "MemTotal"),
                 "cgroup2_memory": cgroup2_root() is not None},
        "setup": {"runs": a.runs, "warmup": a.warmup, "density": a.density, "lxc_density": a.lxc_density, "settle_s": a.settle,
                  "parallel": a.parallel, "limits": "--memory 64M --pids 100" if a.limits else "none",
                  "template": "busybox system rootfs (tests/storage/make-busybox-rootfs.sh), busybox init"},
        "systems": {}, "timing": {}, "density": {}, "failures": [],
    }
    bh = Bulkhead(a, a.work, rootfs)
    systems = [bh]
    lx = None
    lxn = None
    try:
        bh.setup()
        doc["systems"]["bulkhead"] = bh.version
        log(f"bulkheadd up ({bh.version}); template imported")
        if not a.no_lxc:
            try:
                lx = Lxc(a, a.work, lxc_rootfs("lxc"))
                lx.setup()
                doc["systems"]["lxc"] = lx.version
                # One probe so an LXC that cannot run here is recorded once, with its reason.
                try:
                    ph = []
                    lx.create_start("probe", ph, level="DEBUG")
                    doc["lxc_probe"] = {"phases_ms": ph[0], "largest_gaps": lxc_log_gaps(
                        os.path.join(lx.path, "probe.log"))}
                    st, pid = lx.state("probe")
                    if st != "running":
                        raise RuntimeError(f"probe is {st}")
                    systems.append(lx)
                except Exception as e:
                    logf = os.path.join(lx.path, "probe.log")
                    tail = open(logf).read().strip().splitlines()[-6:] if os.path.exists(logf) else []
                    msg = f"lxc: cannot start a container here: {e}" + ("; log: " + " | ".join(tail) if tail else "")
                    doc["failures"].append(msg)
                    log(msg)
                finally:
                    lx.destroy("probe")
                if lx in systems and not a.no_lxc_nohook:
                    lxn = Lxc(a, a.work, lxc_rootfs("lxc-nohook"), lxcfs_hook=False)
                    lxn.setup()
                    try:
                        ph = []
                        lxn.create_start("probe", ph, level="DEBUG")
                        doc["lxc_nohook_probe"] = {"phases_ms": ph[0], "largest_gaps": lxc_log_gaps(
                            os.path.join(lxn.path, "nprobe.log"))}
                        systems.append(lxn)
                    except Exception as e:
                        doc["failures"].append(f"lxc without the lxcfs hook: cannot start: {e}")
                    finally:
                        lxn.destroy("probe")
            except Exception as e:
                doc["failures"].append(f"lxc: setup: {e}")
                log(f"lxc setup: {e}")
        log(f"timing create-to-running: {a.runs} runs + {a.warmup} warm-up, systems {[s.name for s in systems]}")
        doc["timing"] = measure_timing(systems, a.runs, a.warmup)
        for k, v in doc["timing"].items():
            for e in v["errors"][:5]:
                doc["failures"].append(f"{k} timing: {e}")
        ns = [int(x) for x in a.density.split(",") if x]
        if ns:
            cgroot = cgroup2_root()
            if not cgroot:
                doc["failures"].append("density: no cgroup2 with the memory controller here (hybrid host); "
                                       "memory per container is measured in the VM")
            else:
                for s in systems:
                    sn = ns
                    if isinstance(s, Lxc) and not s.lxcfs_hook:
                        continue  # the same container and monitor as "lxc": timing only
                    if isinstance(s, Lxc) and a.lxc_density is not None:
                        sn = [int(x) for x in a.lxc_density.split(",") if x]
                    if not sn:
                        continue
                    log(f"density {s.name}: {sn}")
                    budget = a.lxc_budget if isinstance(s, Lxc) else a.budget
                    doc["density"][s.name] = measure_density(s, sn, cgroot, a.settle, a.parallel, budget)
                    for e in doc["density"][s.name]["errors"][:5]:
                        doc["failures"].append(f"{s.name} density: {e}")
    except Exception as e:
        doc["failures"].append(f"aborted: {e}")
        log(f"aborted: {e}")
    finally:
        if not a.keep:
            for s in (bh, lx, lxn):
                try:
                    if s and s.cleanup():
                        log(f"{s.name}: destroyed leftovers")
                except Exception as e:
                    doc["failures"].append(f"{s.name} cleanup: {e}")
        bh.teardown()
        for x in (lx, lxn):
            if x:
                time.sleep(0.5)
                x.teardown()
        stop_private_lxcfs()
        try:
            with open(os.path.join(a.work, "bulkheadd.log")) as f:
                doc["daemon_log_tail"] = f.read().splitlines()[-20:]
        except OSError:
            pass
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=1)
    log(f"wrote {a.out}")


if __name__ == "__main__":
    main()
