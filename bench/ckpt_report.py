#!/usr/bin/env python3
"""Turns a bench/ckpt.sh result directory into results.md: the checkpoint
bandwidth table, fio engine vs psync, and issue 4's two targets as ratios of
the same run (libcfs async / FUSE on N-to-N write >= 1.5; libcfs async >=
0.8 x iperf3 loopback / ((k+m)/k) with 4+2)."""
import glob
import json
import os
import statistics
import sys

out = sys.argv[1]
raw = os.path.join(out, "raw")
K, M = 4, 2


def load(p):
    try:
        return json.load(open(p))
    except (OSError, ValueError):
        return None


iperf = load(os.path.join(raw, "iperf3.json"))
iperf_mib = None
if iperf and "end" in iperf:
    iperf_mib = iperf["end"]["sum_received"]["bits_per_second"] / 8 / 2**20

runs = {}
for p in sorted(glob.glob(os.path.join(raw, "ckpt-*.json"))):
    d = load(p)
    if not d:
        continue
    key = (d["pattern"], d["bs"] >> 20, d["mode"])
    runs.setdefault(key, []).append(d)


def med(key, field):
    v = [r[field] for r in runs.get(key, [])]
    return statistics.median(v) if v else None


print("# Checkpoint write benchmarks\n")
if iperf_mib:
    print(f"iperf3 loopback TCP (1 stream): **{iperf_mib:.0f} MiB/s**; divided by the "
          f"write amplification of 4+2 ({(K + M) / K:.2f}): {iperf_mib * K / (K + M):.0f} MiB/s.\n")
dd = load(os.path.join(raw, "pagecache-dd.json"))
if dd and dd.get("elapsed_s"):
    cpu = dd["sys_s"] + dd["user_s"]
    print(f"Local page-cache write (dd, 2 GiB): {2048 / dd['elapsed_s']:.0f} MiB/s, {cpu / 2:.2f} CPU s/GiB; "
          f"4+2 stores 1.5 GiB per GiB, so the S-workers alone need {1.5 * cpu / 2:.2f} CPU s per GiB written.\n")
disk = load(os.path.join(raw, "disk-direct.json"))
disk_mib = None
if disk and disk.get("jobs"):
    disk_mib = disk["jobs"][0]["write"]["bw_bytes"] / 2**20
    print(f"Disk, O_DIRECT writes (fio, 6 jobs, 1 MiB): **{disk_mib:.0f} MiB/s**; divided by the "
          f"write amplification of 4+2: {disk_mib * K / (K + M):.0f} MiB/s, the most any client "
          f"path can store here.\n")
print("| pattern | request | libcfs async MiB/s | libcfs sync MiB/s | FUSE MiB/s | async / FUSE | "
      "CPU s/GiB async | sync | FUSE (writers + cfs-fuse) |")
print("|---|---|---|---|---|---|---|---|---|")
for pat in ("nn", "n1"):
    for bs in (1, 16):
        a, s, f = (med((pat, bs, m), "mib_s") for m in ("async", "sync", "posix"))
        ca, cs, cf = (med((pat, bs, m), "client_cpu_s_per_gib") for m in ("async", "sync", "posix"))
        fmt = lambda x, n=0: "-" if x is None else f"{x:.{n}f}"
        ratio = f"{a / f:.2f}x" if a and f else "-"
        name = "N-to-N" if pat == "nn" else "N-to-1"
        print(f"| {name} | {bs} MiB | {fmt(a)} | {fmt(s)} | {fmt(f)} | {ratio} | {fmt(ca, 2)} | "
              f"{fmt(cs, 2)} | {fmt(cf, 2)} |")

fio_rows = []
for bs in ("1m", "1m-u256k", "16m"):
    row = {}
    jobs = (f"cfs-nton-8jobs-{bs}", f"psync-nton-8jobs-{bs.split('-')[0]}")
    for job in jobs:
        vals, cpus = [], []
        for p in sorted(glob.glob(os.path.join(raw, f"fio-{job}-r*.json"))):
            if p.endswith(".fuse.json"):
                continue
            d = load(p)
            if not d or not d.get("jobs"):
                continue
            j = d["jobs"][0]
            bw = j["write"]["bw_bytes"] / 2**20
            gib = j["write"]["io_bytes"] / 2**30
            fuse = load(p[:-5] + ".fuse.json") or {}
            if fuse.get("fio_cpu_s", -1) < 0:
                continue
            cpu_s = fuse["fio_cpu_s"]
            vals.append(bw)
            if gib:
                cpus.append((cpu_s + fuse.get("fuse_daemon_cpu_s", 0)) / gib)
        row[job.split("-")[0]] = (statistics.median(vals) if vals else None,
                                  statistics.median(cpus) if cpus else None)
    fio_rows.append((bs, row))
print("\n## fio: libcfs engine vs psync on the mount (8 jobs, N-to-N, end_fsync)\n")
print("| request | engine MiB/s | psync on mount MiB/s | engine / psync | CPU s/GiB engine | psync + cfs-fuse |")
print("|---|---|---|---|---|---|")
for bs, row in fio_rows:
    e, p = row.get("cfs", (None, None)), row.get("psync", (None, None))
    r = f"{e[0] / p[0]:.2f}x" if e[0] and p[0] else "-"
    f = lambda x, n=0: "-" if x is None else f"{x:.{n}f}"
    label = bs.upper().replace("-U256K", " (engine files 4+2 x 256 KiB units)")
    print(f"| {label} | {f(e[0])} | {f(p[0])} | {r} | {f(e[1], 2)} | {f(p[1], 2)} |")

print("\n## Targets (issue 4)\n")
for bs in (1, 16):
    a, f = med(("nn", bs, "async"), "mib_s"), med(("nn", bs, "posix"), "mib_s")
    if a and f:
        print(f"- N-to-N {bs} MiB: libcfs async / FUSE = {a / f:.2f}x (target >= 1.5x): "
              f"{'met' if a / f >= 1.5 else 'MISSED'}")
    if a and iperf_mib:
        lim = 0.8 * iperf_mib * K / (K + M)
        print(f"- N-to-N {bs} MiB: libcfs async {a:.0f} MiB/s vs 0.8 x iperf3 / 1.5 = {lim:.0f} MiB/s "
              f"({a / lim:.2f}x of the target): {'met' if a >= lim else 'MISSED'}")
    if a and disk_mib:
        dl = disk_mib * K / (K + M)
        print(f"- N-to-N {bs} MiB: libcfs async is {a / dl:.2f}x of the disk's limit for 4+2 "
              f"({dl:.0f} MiB/s){' (the target lies above what this disk can store)' if iperf_mib and 0.8 * iperf_mib * K / (K + M) > dl else ''}")
