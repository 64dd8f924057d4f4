#!/usr/bin/env python3
"""Renders a bench/network result JSON as markdown (bench/results/*-network-*.md).
Usage: report.py RESULT.json OUT.md"""
import json
import statistics
import sys


def f(x, nd=1):
    return "n/a" if x is None else f"{x:.{nd}f}"


def kib(x):
    if x is None:
        return "n/a"
    return f"{x / 1024:.1f} MiB" if abs(x) >= 10240 else f"{x:.0f} KiB"


def pct(xs, q):
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


TIMING_ROWS = [
    ("bulkhead", "bulkhead, no NIC: `bulkheadctl create NAME --template busybox --start`"),
    ("bulkhead-nic", "bulkhead, one bridged NIC: `... --net lan0 --start`"),
    ("lxc", "LXC, `lxc.net.0.type = empty`: `lxc-copy -s -B overlay` + `lxc-start -d` + `lxc-wait`"),
    ("lxc-nic", "LXC, one veth on a bridge (static IPv4 + gateway), same commands"),
    ("lxc-nohook", "LXC without Debian's lxcfs mount hook, `empty`"),
    ("lxc-nohook-nic", "LXC without the lxcfs hook, one veth on a bridge"),
]
KINDS = [
    ("loopback", "loopback (127.0.0.1 -> 127.0.0.1, the bench's network namespace)"),
    ("container_to_bridge", "bridged veth: container -> bridge address (container sends)"),
    ("bridge_to_container", "bridged veth: bridge address -> container (container receives)"),
    ("container_to_container", "bridged veth x2: container -> container on the same bridge"),
]


def host_part(d, o):
    t = d.get("timing", {})
    o.append("| create-to-running (busybox system container) | median ms | p90 ms | min ms | runs |")
    o.append("|---|---:|---:|---:|---:|")
    for k, label in TIMING_ROWS:
        s = (t.get(k) or {}).get("summary")
        if s:
            o.append(f"| {label} | {f(s['median'])} | {f(s['p90'])} | {f(s['min'])} | {s['n']} |")
    o.append("")
    # The variants run one after another in every iteration, so sample i of "X-nic" and of "X" were taken
    # within a second of each other: the per-iteration difference cancels most of the machine's drift.
    o.append("| network setup cost per container (NIC minus no NIC) | difference of medians, ms | "
             "median of per-iteration differences, ms | 25th-75th percentile of those, ms |")
    o.append("|---|---:|---:|---:|")
    for base, label in (("bulkhead", "bulkhead (`--net` on a managed bridge)"), ("lxc", "LXC (veth on a bridge)"),
                        ("lxc-nohook", "LXC without the lxcfs hook")):
        a = t.get(base) or {}
        b = t.get(base + "-nic") or {}
        if not a.get("summary") or not b.get("summary"):
            continue
        row = f"| {label} | {f(b['summary']['median'] - a['summary']['median'])} |"
        if len(a["samples_ms"]) == len(b["samples_ms"]):
            dd = sorted(y - x for x, y in zip(a["samples_ms"], b["samples_ms"]))
            row += f" {f(statistics.median(dd))} | {f(pct(dd, 0.25))} .. {f(pct(dd, 0.75))} |"
        else:
            row += " n/a (a variant had failures) | |"
        o.append(row)
    o.append("")
    a = (t.get("bulkhead") or {}).get("cpu_ms")
    b = (t.get("bulkhead-nic") or {}).get("cpu_ms")
    if a and b:
        o.append("CPU time of bulkheadd's whole tree (daemon, monitors, containers: a cpuacct cgroup, "
                 "`cpuacct.usage` read before and after each create), which load on the machine moves far less "
                 "than wall time:")
        o.append("")
        o.append("| bulkhead create-to-running, CPU ms | median | p90 | min |")
        o.append("|---|---:|---:|---:|")
        for k, label in (("bulkhead", "no NIC"), ("bulkhead-nic", "one bridged NIC")):
            s = t[k]["cpu_summary"]
            o.append(f"| {label} | {f(s['median'])} | {f(s['p90'])} | {f(s['min'])} |")
        if len(a) == len(b):
            dd = sorted(y - x for x, y in zip(a, b))
            o.append(f"| NIC minus no NIC, per iteration | {f(statistics.median(dd))} | "
                     f"25th-75th percentile {f(pct(dd, 0.25))} .. {f(pct(dd, 0.75))} | |")
        o.append("")
    tp = d.get("throughput") or {}
    sm = tp.get("summary_gbps") or {}
    if sm:
        o.append(f"Throughput: {tp.get('tool')}, one TCP stream, {tp.get('secs')} s a test, {tp.get('reps')} tests "
                 "per row interleaved (order rotated); the receiver's rate.")
        o.append("")
        o.append("| path | median Gbit/s | min | max | ÷ loopback | retransmits (median) |")
        o.append("|---|---:|---:|---:|---:|---:|")
        lo = (sm.get("loopback") or {}).get("median")
        for k, label in KINDS:
            s = sm.get(k)
            if not s:
                continue
            rt = [x.get("retransmits") for x in tp["kinds"][k] if x.get("retransmits") is not None]
            o.append(f"| {label} | {f(s['median'], 2)} | {f(s['min'], 2)} | {f(s['max'], 2)} | "
                     f"{f(s['median'] / lo, 2) + 'x' if lo else 'n/a'} | {f(statistics.median(rt), 0) if rt else 'n/a'} |")
        o.append("")


def vm_part(d, o):
    den = d.get("density") or {}
    o.append("| N idle containers | round | running | cgroups (memory.current) / N | monitor PSS each (median) | "
             "daemon RSS | (daemon + monitors) PSS / N | MemTotal-MemAvailable delta / N | Slab / N | "
             "SUnreclaim / N | Percpu / N | create all, s |")
    o.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, label in (("bulkhead", "bulkhead, no NIC"), ("bulkhead-nic", "bulkhead, one bridged NIC")):
        for i, m in enumerate(den.get(name) or []):
            k = m["kernel_delta_per_container_kib"]
            o.append(f"| {label}, N={m['n']} | {i + 1} | {m['running']} | {kib(m['cgroup_per_container_kib'])} | "
                     f"{kib((m.get('monitor_pss_each_kib') or {}).get('median'))} | {kib(m['daemon_rss_kib'])} | "
                     f"{kib(m['added_per_container_pss_kib'])} | {kib(k['used (MemTotal-MemAvailable)'])} | "
                     f"{kib(k.get('Slab'))} | {kib(k.get('SUnreclaim'))} | {kib(k.get('Percpu'))} | "
                     f"{f(m['create_start_all_s'])} |")
    o.append("")
    a, b = den.get("bulkhead") or [], den.get("bulkhead-nic") or []
    if a and b:
        def mean(rows, fn):
            return statistics.fmean(fn(m) for m in rows)

        def diff(fn):
            return mean(b, fn) - mean(a, fn)

        kd = lambda key: (lambda m: m["kernel_delta_per_container_kib"][key])  # noqa: E731
        o.append(f"What one bridged NIC adds per container (mean of the {len(b)} NIC round(s) minus the mean of "
                 f"the {len(a)} round(s) without):")
        o.append("")
        o.append("| per container | KiB |")
        o.append("|---|---:|")
        o.append(f"| container cgroup memory.current | {f(diff(lambda m: m['cgroup_per_container_kib']), 0)} |")
        o.append(f"| daemon + monitors PSS / N | {f(diff(lambda m: m['added_per_container_pss_kib']), 0)} |")
        o.append(f"| daemon RSS / N | {f(diff(lambda m: m['daemon_rss_kib'] / m['n']), 1)} |")
        for key in ("used (MemTotal-MemAvailable)", "Slab", "SUnreclaim", "Percpu"):
            o.append(f"| kernel, {key} | {f(diff(kd(key)), 0)} |")
        o.append("")
        m = b[-1].get("memory_stat_first_kib")
        if m:
            o.append("memory.stat of one idle container with a NIC (KiB): "
                     + ", ".join(f"{x} {y}" for x, y in m.items()))
            o.append("")


def main():
    d = json.load(open(sys.argv[1]))
    o = []
    w = d["where"]
    o.append(f"### bulkhead network benchmark, {w}, {d['date'][:10]}")
    o.append("")
    h = d["host"]
    s = d["setup"]
    o.append(f"{w}: kernel {h['kernel']}, {h['cpus']} CPUs, {h['mem_total_kib'] // 1024} MiB, load at start "
             f"{' '.join(f'{x:.2f}' for x in h.get('loadavg', []))}; "
             + "; ".join(f"{k} = {v}" for k, v in d["systems"].items())
             + f"; `{s['bulkhead_network']}`; limits per container: {s['limits']}"
             + (f"; {s['runs']} runs per variant, interleaved." if w == "host" else
                f"; {s['rounds']} round(s) of N={s['n']}, {s['parallel']} creates at a time, {s['settle_s']:.0f} s idle "
                "before reading; page cache dropped before each /proc/meminfo reading."))
    o.append("")
    if w == "host":
        host_part(d, o)
    else:
        vm_part(d, o)
    if d.get("failures"):
        o.append("Failures (recorded, not hidden):")
        o.append("")
        o += [f"- {x}" for x in d["failures"]]
        o.append("")
    with open(sys.argv[2], "w") as fh:
        fh.write("\n".join(o) + "\n")


if __name__ == "__main__":
    main()
