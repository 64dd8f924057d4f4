#!/usr/bin/env python3
"""Network benchmark of issue 12 item 6 (see bench/README.md, "Network benchmark").

--where host (run.sh runs it as root in a private mount AND network namespace, so every bridge, veth,
   mount and daemon of the run dies with it):
  1. network setup cost per container: create-to-running with one bridged NIC vs none, bulkheadd vs
     LXC (veth on a bridge vs `lxc.net.0.type = empty`), all variants interleaved;
  2. throughput (iperf3, TCP, one stream) of the bridged veth: container -> bridge address, bridge
     address -> container, container -> container, against the loopback of the same namespace.
--where vm (inside tests/vm, cgroup v2):
  3. memory of N idle containers with one bridged NIC vs N without: cgroups, daemon and monitors
     (RSS/PSS), and the kernel's side from /proc/meminfo (MemAvailable, Slab, SUnreclaim, Percpu)
     with the page cache dropped before each reading.
The process helpers and the Bulkhead / Lxc drivers are those of bench/daemon/bench.py (--daemon-bench).
Writes one JSON document (all raw samples) to --out. Nothing here is an assertion.
"""
import argparse
import concurrent.futures as cf
import datetime
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import time

db = None  # bench/daemon/bench.py, loaded in main()

BH_NET = "lan0"
BH_BRIDGE_V4 = "198.18.90.1/24"  # bulkheadd's managed bridge bh-lan0
LXC_BRIDGE = "bhlxcbr0"  # made by this script for LXC's veths (host mode only)
LXC_BRIDGE_V4 = "198.18.91.1/24"
LXC_CT_V4 = "198.18.91.2/24"


def log(msg):
    db.log(msg)


def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0])
    return out


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


# ------------------------------------------------------------------------------------ variants
class BhVariant:
    """One way of creating bulkhead containers on a shared daemon (with or without a NIC)."""

    def __init__(self, bh, name, extra, template="busybox"):
        self.bh, self.name, self.extra, self.template, self.a = bh, name, extra, template, bh.a
        self.cpu_ms = []  # CPU time of the daemon's whole tree per create (host: a cpuacct cgroup), or none

    def create_start(self, n):
        c0 = self.bh_cpu_ns()
        dt = db.timed([os.path.join(self.bh.bin, "bulkheadctl"), "--socket", self.bh.sock, "create", n,
                       "--template", self.template, *self.bh.limits, *self.extra, "--start"])
        if c0 is not None:
            self.cpu_ms.append((self.bh_cpu_ns() - c0) / 1e6)
        return dt

    def bh_cpu_ns(self):
        cg = getattr(self.bh, "cpuacct", None)
        if not cg:
            return None
        with open(os.path.join(cg, "cpuacct.usage")) as f:
            return int(f.read())

    def state(self, n):
        return self.bh.state(n)

    def destroy(self, n):
        self.bh.destroy(n)

    def count_running(self):
        return self.bh.count_running()

    def cgroup_dir(self, cgroot, n):
        return self.bh.cgroup_dir(cgroot, n)

    def helpers(self):
        return self.bh.helpers()


def lxc_nic_class():
    class LxcNic(db.Lxc):
        """LXC with one veth on LXC_BRIDGE, a static address and a default route (what bulkhead's
        `--net` gives), instead of `lxc.net.0.type = empty`."""

        def __init__(self, a, work, rootfs, lxcfs_hook=True):
            super().__init__(a, work, rootfs, lxcfs_hook)
            self.name += "-nic"
            self.prefix = "v" if lxcfs_hook else "nv"  # cgroups are lxc.payload.NAME whatever the lxcpath
            self.path = os.path.join(work, self.name)

        def setup(self):
            super().setup()
            cfg = os.path.join(self.path, "base", "config")
            with open(cfg) as f:
                text = f.read()
            nic = "\n".join([
                "lxc.net.0.type = veth",
                f"lxc.net.0.link = {LXC_BRIDGE}",
                "lxc.net.0.flags = up",
                "lxc.net.0.name = eth0",
                f"lxc.net.0.ipv4.address = {LXC_CT_V4}",
                f"lxc.net.0.ipv4.gateway = {LXC_BRIDGE_V4.split('/')[0]}",
            ])
            assert "lxc.net.0.type = empty" in text
            with open(cfg, "w") as f:
                f.write(text.replace("lxc.net.0.type = empty", nic))

    return LxcNic


# --------------------------------------------------------------------------------- throughput
def copy_with_libs(binary, root):
    """binary and every shared library ldd names, at the same paths under root (a template with iperf3)."""
    paths = [binary]
    for line in db.run(["ldd", binary]).stdout.splitlines():
        p = line.split()
        if "=>" in p and len(p) > 2 and p[2].startswith("/"):
            paths.append(p[2])
        elif p and p[0].startswith("/"):
            paths.append(p[0])
    for p in paths:
        dst = os.path.join(root, p.lstrip("/"))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(p, dst)  # follows the libraries' symlinks: the file lands under the linked name
    return paths


def iperf_pair(server_cmd, client_cmd, port, secs):
    """One iperf3 server in this namespace (one test, -1) and one client; the client's figures."""
    srv = subprocess.Popen(server_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # An iperf3 server takes any connection as its control channel: probing the port with a plain
        # connect would use up its one test. Wait until it listens (/proc/net/tcp), then run the client.
        for _ in range(200):
            if addr_listening(port) or srv.poll() is not None:
                break
            time.sleep(0.05)
        return run_client(client_cmd, secs)
    finally:
        try:
            srv.wait(15)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()


def addr_listening(port):
    """True when something in this network namespace listens on TCP port (reads /proc/net/tcp*)."""
    for fn in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(fn) as f:
                for line in f.readlines()[1:]:
                    p = line.split()
                    if p[3] == "0A" and int(p[1].rsplit(":", 1)[1], 16) == port:
                        return True
        except OSError:
            pass
    return False


def measure_throughput(bh, a, rootfs):
    """Bridged veth vs loopback with iperf3 (the container runs the host's iperf3 from a template that has
    it and its libraries: Debian's iperf3 is dynamically linked, so a bind mount of the binary alone would
    not run in a busybox rootfs)."""
    iperf = shutil.which("iperf3")
    out = {"tool": None, "secs": a.iperf_secs, "reps": a.iperf_reps, "kinds": {}, "errors": []}
    if not iperf:
        out["errors"].append("iperf3 not installed")
        return out
    out["tool"] = db.run([iperf, "--version"]).stdout.splitlines()[0]
    troot = os.path.join(a.work, "rootfs-iperf")
    shutil.copytree(rootfs, troot, symlinks=True)
    out["template_files"] = copy_with_libs(iperf, troot)
    bh.ctl("template", "import", "iperf", troot)
    ctr = BhVariant(bh, "iperf", ["--net", BH_NET], template="iperf")
    ctl = [os.path.join(bh.bin, "bulkheadctl"), "--socket", bh.sock]
    names = ["p1", "p2"]
    try:
        for n in names:
            ctr.create_start(n)
        addr = {n: [x for x in json.loads(bh.ctl("info", n, "--json").stdout)["nics"]][0]["ipv4"].split("/")[0]
                for n in names}
        out["addresses"] = addr
        br = BH_BRIDGE_V4.split("/")[0]
        T = str(a.iperf_secs)
        port = 5300

        def kinds(port):
            # (name, server command, client command, address, port); the client prints JSON.
            return {
                "loopback": ([iperf, "-s", "-1", "-B", "127.0.0.1", "-p", str(port)],
                             [iperf, "-c", "127.0.0.1", "-p", str(port), "-t", T, "-J"]),
                "container_to_bridge": ([iperf, "-s", "-1", "-B", br, "-p", str(port)],
                                        [*ctl, "exec", "p1", "--", "/usr/bin/iperf3", "-c", br, "-p", str(port),
                                         "-t", T, "-J"]),
                "bridge_to_container": ([*ctl, "exec", "p1", "--", "/usr/bin/iperf3", "-s", "-1", "-p", str(port)],
                                        [iperf, "-c", addr["p1"], "-p", str(port), "-t", T, "-J"]),
                "container_to_container": ([*ctl, "exec", "p2", "--", "/usr/bin/iperf3", "-s", "-1", "-p", str(port)],
                                           [*ctl, "exec", "p1", "--", "/usr/bin/iperf3", "-c", addr["p2"], "-p",
                                            str(port), "-t", T, "-J"]),
            }

        for rep in range(a.iperf_reps):
            ks = list(kinds(0))
            ks = ks[rep % len(ks):] + ks[:rep % len(ks)]  # rotate the order: drift hits every kind alike
            for k in ks:
                port += 1
                srv, cli = kinds(port)[k]
                try:
                    # The server inside a container listens in its netns: wait on the client side instead.
                    if srv[0] != iperf:
                        p = subprocess.Popen(srv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                        try:
                            if not wait_listen_in(bh, "p2" if k == "container_to_container" else "p1", port):
                                raise RuntimeError(f"{k}: the container's iperf3 server did not listen")
                            r = run_client(cli, a.iperf_secs)
                        finally:
                            try:
                                p.wait(15)
                            except subprocess.TimeoutExpired:
                                p.kill()
                                p.wait()
                    else:
                        r = iperf_pair(srv, cli, port, a.iperf_secs)
                    out["kinds"].setdefault(k, []).append(r)
                    log(f"throughput {k}: {r['bps'] / 1e9:.2f} Gbit/s")
                except Exception as e:
                    out["errors"].append(f"{k}: {e}")
                    log(f"throughput {k}: {e}")
    finally:
        for n in names:
            bh.ctl("destroy", n, "--force", check=False)
    out["summary_gbps"] = {k: db.summary([x["bps"] / 1e9 for x in v]) for k, v in out["kinds"].items()}
    return out


def run_client(cli, secs):
    p = db.run(cli, check=False, timeout=secs + 60)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cli)}: exit {p.returncode}: {(p.stderr or p.stdout).strip()[-400:]}")
    end = json.loads(p.stdout)["end"]
    return {"bps": end["sum_received"]["bits_per_second"], "sent_bps": end["sum_sent"]["bits_per_second"],
            "retransmits": end["sum_sent"].get("retransmits"),
            "cpu_sender_pct": end["cpu_utilization_percent"]["host_total"],
            "cpu_receiver_pct": end["cpu_utilization_percent"]["remote_total"]}


def wait_listen_in(bh, name, port, timeout=15.0):
    """True once the container NAME has a TCP listener on port (its /proc/net/tcp, read through exec)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        p = bh.ctl("exec", name, "--", "cat", "/proc/net/tcp", "/proc/net/tcp6", check=False)
        for line in p.stdout.splitlines()[1:]:
            f = line.split()
            if len(f) > 3 and f[3] == "0A" and ":" in f[1] and int(f[1].rsplit(":", 1)[1], 16) == port:
                return True
        time.sleep(0.1)
    return False


# ------------------------------------------------------------------------------------ density
def density_round(s, n, cgroot, settle, parallel):
    """N containers of variant s: kernel memory before/after (caches dropped), cgroups, daemon, monitors."""
    drop_caches()
    time.sleep(1)
    before = meminfo()
    names = [f"d{i}" for i in range(n)]
    errors = []
    t = time.perf_counter()
    with cf.ThreadPoolExecutor(parallel) as ex:
        futs = {ex.submit(s.create_start, x): x for x in names}
        ok = []
        for f in cf.as_completed(futs):
            try:
                f.result()
                ok.append(futs[f])
            except Exception as e:
                errors.append(f"{futs[f]}: {e}")
    created_s = time.perf_counter() - t
    m = db.sample_memory(s, sorted(ok), cgroot, settle)
    drop_caches()
    time.sleep(1)
    after = meminfo()
    m["meminfo_before_kib"] = before
    m["meminfo_after_kib"] = after
    k = len(ok) or 1
    m["kernel_delta_per_container_kib"] = {
        "used (MemTotal-MemAvailable)": ((after["MemTotal"] - after["MemAvailable"]) -
                                         (before["MemTotal"] - before["MemAvailable"])) / k,
        **{x: (after[x] - before[x]) / k for x in ("Slab", "SUnreclaim", "SReclaimable", "Percpu", "KernelStack",
                                                   "PageTables", "Shmem", "AnonPages") if x in after}}
    m["create_start_all_s"] = created_s
    m["running"] = s.count_running()
    m["errors"] = errors
    t = time.perf_counter()
    with cf.ThreadPoolExecutor(parallel) as ex:
        for x, f in [(x, ex.submit(s.destroy, x)) for x in ok]:
            try:
                f.result()
            except Exception as e:
                errors.append(f"destroy {x}: {e}")
    m["destroy_all_s"] = time.perf_counter() - t
    log(f"{s.name} N={len(ok)}: cgroups {m['cgroup_per_container_kib']:.0f} KiB/ct, monitors PSS "
        f"{m['monitors_pss_kib'] / k:.0f} KiB/ct, daemon RSS {m['daemon_rss_kib']} KiB, kernel "
        + ", ".join(f"{a} {b:.1f}" for a, b in m["kernel_delta_per_container_kib"].items()) + " KiB/ct")
    return m


# ------------------------------------------------------------------------------------- cpuacct
CPUACCT = "/sys/fs/cgroup/cpuacct"


def cpuacct_enter(bh):
    """Moves bulkheadd into a cpuacct (v1) cgroup of its own, under this process's, so the CPU time of the
    daemon, its monitors and their containers can be read per create (cpuacct.usage, ns): on a loaded
    machine CPU time shows what the NIC costs where wall time drowns it. On the dev hosts bulkhead makes
    no cgroup (no cgroup2 controllers), so its whole tree stays there. Removed in cpuacct_leave."""
    try:
        with open("/proc/self/cgroup") as f:
            mine = next(line.strip().split(":", 2)[2] for line in f if "cpuacct" in line.split(":")[1].split(","))
        cg = os.path.join(CPUACCT + mine, f"bhnetbench-{os.getpid()}")
        os.mkdir(cg)
        bh.cpuacct = cg
        with open(os.path.join(cg, "cgroup.procs"), "w") as f:
            f.write(str(bh.daemon.pid))
    except (OSError, StopIteration) as e:
        log(f"no cpuacct cgroup for the daemon, CPU time not measured: {e}")


def cpuacct_leave(bh):
    cg = getattr(bh, "cpuacct", None)
    if not cg:
        return
    for _ in range(50):  # the daemon, its lxcfs: gone or going
        try:
            os.rmdir(cg)
            return
        except OSError:
            time.sleep(0.1)
    log(f"could not remove {cg}")


def daemon_cgroup_parents(bh):
    """Every directory named after the daemon's --cgroup-parent, in whichever hierarchies exist."""
    out = []
    for top in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        d = os.path.join(top, bh.cgparent)
        if os.path.isdir(d):
            out.append(d)
    return out


# --------------------------------------------------------------------------------------- main
def ip(*args):
    db.run(["ip", *args])


def main():
    global db
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon-bench", required=True, help="path of bench/daemon/bench.py")
    ap.add_argument("--bin", required=True, help="dir with bulkheadd, bulkheadctl, bulkhead-monitor")
    ap.add_argument("--work", required=True, help="scratch dir (tmpfs)")
    ap.add_argument("--rootfs-src", required=True, help="a busybox rootfs (tests/storage/make-busybox-rootfs.sh)")
    ap.add_argument("--where", choices=["host", "vm"], required=True)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iperf-secs", type=int, default=5)
    ap.add_argument("--iperf-reps", type=int, default=3)
    ap.add_argument("--n", type=int, default=100, help="containers per density round (vm)")
    ap.add_argument("--rounds", type=int, default=2, help="density rounds, each: N without a NIC, N with one (vm)")
    ap.add_argument("--settle", type=float, default=10.0)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--limits", action="store_true", help="--memory 64M --pids 100 on every container")
    ap.add_argument("--no-lxc", action="store_true")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    a.keep = False
    a.no_lxc_nohook = False
    spec = importlib.util.spec_from_file_location("daemon_bench", a.daemon_bench)
    db = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(db)

    os.makedirs(a.work, exist_ok=True)
    rootfs = os.path.join(a.work, "rootfs")
    db.run(["cp", "-a", a.rootfs_src, rootfs])

    def lxc_rootfs(name):
        d = os.path.join(a.work, name, "base", "rootfs")
        os.makedirs(os.path.dirname(d), exist_ok=True)
        shutil.copytree(rootfs, d, symlinks=True)
        return d

    doc = {
        "bench": "network", "where": a.where,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": {"kernel": platform.release(), "cpus": os.cpu_count(),
                 "mem_total_kib": db.read_kib("/proc/meminfo", "MemTotal"), "loadavg": os.getloadavg()},
        "setup": {"runs": a.runs, "warmup": a.warmup, "n": a.n, "rounds": a.rounds, "settle_s": a.settle,
                  "parallel": a.parallel, "limits": "--memory 64M --pids 100" if a.limits else "none",
                  "bulkhead_network": f"bulkheadctl network create {BH_NET} --bridge --ipv4 {BH_BRIDGE_V4}",
                  "lxc_bridge": f"{LXC_BRIDGE} {LXC_BRIDGE_V4}, container {LXC_CT_V4}"},
        "systems": {}, "timing": {}, "throughput": {}, "density": {}, "failures": [],
    }
    bh = db.Bulkhead(a, a.work, rootfs)
    cg_parents_before = set(daemon_cgroup_parents(bh))
    lxcs = []
    try:
        bh.setup()
        doc["systems"]["bulkhead"] = bh.version
        bh.ctl("network", "create", BH_NET, "--bridge", "--ipv4", BH_BRIDGE_V4)
        log(f"bulkheadd up ({bh.version}); template imported; network {BH_NET} {BH_BRIDGE_V4}")
        plain = BhVariant(bh, "bulkhead", [])
        nic = BhVariant(bh, "bulkhead-nic", ["--net", BH_NET])
        if a.where == "host":
            cpuacct_enter(bh)
            systems = [plain, nic]
            if not a.no_lxc:
                ip("link", "add", LXC_BRIDGE, "type", "bridge")
                ip("addr", "add", LXC_BRIDGE_V4, "dev", LXC_BRIDGE)
                ip("link", "set", LXC_BRIDGE, "up")
                LxcNic = lxc_nic_class()
                try:
                    for cls, hook, nm in ((db.Lxc, True, "lxc"), (LxcNic, True, "lxc-nic"),
                                          (db.Lxc, False, "lxc-nohook"), (LxcNic, False, "lxc-nohook-nic")):
                        x = cls(a, a.work, lxc_rootfs(nm), lxcfs_hook=hook)
                        assert x.name == nm, x.name
                        x.setup()
                        lxcs.append(x)
                        x.create_start("probe")  # one probe: an LXC that cannot run here fails once, clearly
                        st, pid = x.state("probe")
                        x.destroy("probe")
                        if st != "running":
                            raise RuntimeError(f"{nm} probe is {st}")
                        systems.append(x)
                    doc["systems"]["lxc"] = lxcs[0].version
                except Exception as e:
                    doc["failures"].append(f"lxc: {e}")
                    log(f"lxc: {e}")
            log(f"timing create-to-running: {a.runs} runs + {a.warmup} warm-up, {[s.name for s in systems]}")
            doc["timing"] = db.measure_timing(systems, a.runs, a.warmup)
            for v in (plain, nic):
                if v.cpu_ms:  # warm-up runs first; a failed create leaves no sample in either list
                    doc["timing"][v.name]["cpu_ms"] = v.cpu_ms[a.warmup:]
                    doc["timing"][v.name]["cpu_summary"] = db.summary(v.cpu_ms[a.warmup:])
            for k, v in doc["timing"].items():
                for e in v["errors"][:5]:
                    doc["failures"].append(f"{k} timing: {e}")
            doc["throughput"] = measure_throughput(bh, a, rootfs)
            doc["failures"] += [f"throughput: {e}" for e in doc["throughput"]["errors"]]
        else:
            cgroot = db.cgroup2_root()
            if not cgroot:
                raise RuntimeError("no cgroup2 with the memory controller here")
            for r in range(a.rounds):
                for s in (plain, nic):
                    log(f"density round {r + 1}: {a.n} x {s.name}")
                    m = density_round(s, a.n, cgroot, a.settle, a.parallel)
                    doc["density"].setdefault(s.name, []).append(m)
                    doc["failures"] += [f"{s.name} density: {e}" for e in m["errors"][:5]]
    except Exception as e:
        doc["failures"].append(f"aborted: {e}")
        log(f"aborted: {e}")
    finally:
        for s in [bh, *lxcs]:
            try:
                if s.cleanup():
                    log(f"{s.name}: destroyed leftovers")
            except Exception as e:
                doc["failures"].append(f"{s.name} cleanup: {e}")
        bh.ctl("network", "rm", BH_NET, check=False)
        bh.teardown()
        time.sleep(0.5)
        for x in lxcs:
            x.teardown()
        db.stop_private_lxcfs()
        cpuacct_leave(bh)
        for d in sorted(set(daemon_cgroup_parents(bh)) - cg_parents_before, key=len, reverse=True):
            try:  # the daemon's --cgroup-parent, when this run made it (empty once the daemon is gone)
                os.rmdir(d)
            except OSError as e:
                log(f"could not remove {d}: {e}")
        if a.where == "host":
            db.run(["ip", "link", "del", LXC_BRIDGE], check=False)
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
