#!/usr/bin/env python3
"""Renders a bench/daemon result JSON as the markdown table of bench/results/*-daemon-*.md.
Usage: report.py RESULT.json OUT.md"""
import json
import sys


def f(x, nd=1):
    return "n/a" if x is None else f"{x:.{nd}f}"


def kib(x):
    if x is None:
        return "n/a"
    return f"{x / 1024:.1f} MiB" if x >= 10240 else f"{x:.0f} KiB"


def verdict(ok):
    return "n/a" if ok is None else ("met" if ok else "**missed**")


def main():
    d = json.load(open(sys.argv[1]))
    o = []
    w = d["where"]
    o.append(f"### bulkheadd vs LXC, {w}{' (quick)' if d.get('quick') else ''}, {d['date'][:10]}")
    o.append("")
    h = d["host"]
    o.append(f"{w}: kernel {h['kernel']}, {h['cpus']} CPUs, {h['mem_total_kib'] // 1024} MiB; "
             + "; ".join(f"{k} = {v}" for k, v in d["systems"].items())
             + f"; limits per container: {d['setup']['limits']}; {d['setup']['runs']} runs each, interleaved.")
    o.append("")
    t = d.get("timing", {})
    bh = (t.get("bulkhead") or {}).get("summary")
    lx = (t.get("lxc") or {}).get("summary")
    o.append("| create-to-running (busybox system container) | median ms | p90 ms | min ms | runs |")
    o.append("|---|---:|---:|---:|---:|")
    if bh:
        o.append(f"| bulkhead: `bulkheadctl create NAME --template busybox --start` | {f(bh['median'])} | "
                 f"{f(bh['p90'])} | {f(bh['min'])} | {bh['n']} |")
    if lx:
        o.append(f"| LXC: `lxc-copy -s -B overlay` + `lxc-start -d` + `lxc-wait -s RUNNING` | {f(lx['median'])} | "
                 f"{f(lx['p90'])} | {f(lx['min'])} | {lx['n']} |")
        ph = t["lxc"].get("phases_summary") or {}
        ph_order = [("copy", "LXC, of which `lxc-copy` (snapshot clone)"),
                    ("start_wait", "LXC, of which `lxc-start -d` + `lxc-wait`")]
        for k, label in (("copy", "LXC, of which `lxc-copy` (snapshot clone)"),
                         ("start_wait", "LXC, of which `lxc-start -d` + `lxc-wait`")):
            if k in ph:
                o.append(f"| {label} | {f(ph[k]['median'])} | {f(ph[k]['p90'])} | {f(ph[k]['min'])} | {ph[k]['n']} |")
    ln = (t.get("lxc-nohook") or {}).get("summary")
    if ln:
        o.append(f"| LXC without Debian's lxcfs mount hook (`lxc.hook.mount =`), same commands | {f(ln['median'])} | "
                 f"{f(ln['p90'])} | {f(ln['min'])} | {ln['n']} |")
    o.append("")
    targets = []
    if bh:
        if w == "host":
            targets.append(("create-to-running <= 50 ms on the host (median)", f"{f(bh['median'])} ms",
                            bh["median"] <= 50))
        if lx:
            r = bh["median"] / lx["median"]
            targets.append(("create-to-running <= 0.5x LXC (median)", f"{r:.2f}x", r <= 0.5))
        if ln:
            r = bh["median"] / ln["median"]
            targets.append(("create-to-running <= 0.5x LXC without its lxcfs hook (median)", f"{r:.2f}x", r <= 0.5))
    dens = d.get("density") or {}
    if dens:
        o.append("| memory per idle container | N | running | container cgroups (memory.current) / N | "
                 "daemon RSS | helper per container RSS / PSS (median) | added / N (PSS) | added / N (RSS) | "
                 "total / N (cgroups + PSS) | MemTotal-MemAvailable delta / N |")
        o.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, r in dens.items():
            label = "bulkhead (bulkheadd + bulkhead-monitor)" if name == "bulkhead" else "LXC (`[lxc monitor]` per container)"
            for p in r["points"]:
                me_r = (p.get("monitor_rss_each_kib") or {}).get("median")
                me_p = (p.get("monitor_pss_each_kib") or {}).get("median")
                o.append(f"| {label} | {p['n']} | {p['running']} | {kib(p['cgroup_per_container_kib'])} | "
                         f"{kib(p['daemon_rss_kib']) if name == 'bulkhead' else '-'} | {kib(me_r)} / {kib(me_p)} | "
                         f"{kib(p['added_per_container_pss_kib'])} | {kib(p['added_per_container_rss_kib'])} | "
                         f"{kib(p['total_per_container_pss_kib'])} | {kib(p['system_used_delta_per_container_kib'])} |")
        o.append("")
        b = dens.get("bulkhead")
        if b and b["points"]:
            last = b["points"][-1]
            targets.append((f"added memory per container <= 200 KiB (PSS, N={last['n']})",
                            kib(last["added_per_container_pss_kib"]), last["added_per_container_pss_kib"] <= 200))
            targets.append((f"added memory per container <= 200 KiB (RSS, N={last['n']})",
                            kib(last["added_per_container_rss_kib"]), last["added_per_container_rss_kib"] <= 200))
            big = [p for p in b["points"] if p["n"] >= 500]
            if big:
                targets.append((f"daemon RSS <= 20 MiB at {big[-1]['n']} containers", kib(big[-1]["daemon_rss_kib"]),
                                big[-1]["daemon_rss_kib"] <= 20 * 1024))
        for n, r in dens.items():
            if not r["points"]:
                continue
            p = r["points"][-1]
            for who, key in (("daemon", "daemon_smaps"), ("per-container helper", "monitor_smaps")):
                sm = p.get(key)
                if not sm or not sm.get("rollup_kib"):
                    continue
                ru = sm["rollup_kib"]
                top = list(sm["by_mapping_kib"].items())[:4]
                o.append(f"{n} {who} at N={p['n']} (KiB): RSS {ru.get('Rss')} = anonymous {ru.get('Anonymous')} + "
                         f"file-backed {ru.get('Rss', 0) - ru.get('Anonymous', 0)}; PSS {ru.get('Pss')}; "
                         f"private dirty {ru.get('Private_Dirty')}; largest mappings: "
                         + ", ".join(f"{k} {v['rss']} (PSS {v['pss']}, anon {v['anon']})" for k, v in top))
                o.append("")
        ms = {n: r["points"][-1].get("memory_stat_first_kib") for n, r in dens.items() if r["points"]}
        for n, st in ms.items():
            if st:
                o.append(f"memory.stat of one idle {n} container (KiB): "
                         + ", ".join(f"{k} {v}" for k, v in st.items()))
                o.append("")
    if targets:
        o.append("| target | measured | |")
        o.append("|---|---:|---|")
        for name, val, ok in targets:
            o.append(f"| {name} | {val} | {verdict(ok)} |")
        o.append("")
    if d.get("failures"):
        o.append("Failures (recorded, not hidden):")
        o.append("")
        for x in d["failures"]:
            o.append(f"- {x}")
        o.append("")
    open(sys.argv[2], "w").write("\n".join(o))


if __name__ == "__main__":
    main()
