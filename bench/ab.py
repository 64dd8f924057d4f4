#!/usr/bin/env python3
"""A/B timing of command variants, interleaved, through the same posix_spawn + wait4 harness as
bench.py. Used for the "where does bulkhead's time go" analysis (bench/profile.sh).

  unshare -m --propagation private python3 bench/ab.py [--runs N] [--gap S] [--cgroup2] \
      NAME 'command with {id}' NAME2 'command {id}' ...

{id} is replaced by a fresh container id per run. --cgroup2 mounts a cgroup2 over /sys/fs/cgroup
first (only inside the private mount namespace the caller made).
"""
import os
import shlex
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import pct, spawn  # noqa: E402


def main():
    args = sys.argv[1:]
    runs = 100
    if args[:1] == ["--runs"]:
        runs = int(args[1])
        args = args[2:]
    gap = 0.0
    if args[:1] == ["--gap"]:  # seconds of idle before every command (sporadic starts)
        gap = float(args[1])
        args = args[2:]
    if args[:1] == ["--cgroup2"]:
        if subprocess.run("stat -f -c %T /sys/fs/cgroup | grep -q cgroup2fs", shell=True).returncode:
            subprocess.run(["mount", "-t", "cgroup2", "none", "/sys/fs/cgroup"], check=True)
        args = args[1:]
    pairs = list(zip(args[0::2], args[1::2]))
    res = {n: {"ms": [], "user": [], "sys": [], "fail": 0, "err": ""} for n, _ in pairs}
    seq = 0
    for i in range(runs):
        k = i % len(pairs)
        for name, cmd in pairs[k:] + pairs[:k]:
            seq += 1
            c = cmd.replace("{id}", f"ab{os.getpid()}-{seq}")
            argv = shlex.split(c)
            if gap:
                time.sleep(gap)
            r = spawn(argv, 60)
            if r.rc != 0:
                res[name]["fail"] += 1
                continue
            res[name]["ms"].append(r.ms)
            res[name]["user"].append(r.user_ms)
            res[name]["sys"].append(r.sys_ms)
    print(f"{'variant':28} {'median':>8} {'p90':>8} {'cpu':>7} {'user':>7} {'sys':>7}  "
          f"(ms; wall median/p90, CPU means of the process tree; {runs} interleaved runs)")
    for name, _ in pairs:
        e = res[name]
        if not e["ms"]:
            print(f"{name:28} all {e['fail']} runs failed")
            continue
        cpu = statistics.fmean(u + s for u, s in zip(e["user"], e["sys"]))
        print(f"{name:28} {statistics.median(e['ms']):8.2f} {pct(e['ms'], 90):8.2f} {cpu:7.2f} "
              f"{statistics.fmean(e['user']):7.2f} {statistics.fmean(e['sys']):7.2f}"
              + (f"  ({e['fail']} failed)" if e["fail"] else ""))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
