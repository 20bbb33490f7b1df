#!/usr/bin/env python3
"""Turns the raw output of bench/run.sh into results.md and results.json.

  report.py --one FIO_JSON   one line summary of one fio result (for the log)
  report.py --out DIR        DIR/raw/<target>.<job>.json, DIR/cpu/... ->
                             DIR/results.md, DIR/results.json
  report.py --ec --out DIR   the same for a run of bench/ec.sh (erasure coding,
                             issue 3): parity cost, GlusterFS disperse,
                             degraded reads, partial-stripe writes, rebuild
"""
import argparse
import glob
import json
import os
import sys

TARGETS = ["local", "bindfs", "gluster", "cfs"]
NAMES = {"local": "local dir", "bindfs": "bindfs", "gluster": "GlusterFS", "cfs": "CFS"}
JOBS = [
    ("seq-write-1job", "seq write 1 MiB, 1 job", "MiB/s"),
    ("seq-read-1job", "seq read 1 MiB, 1 job", "MiB/s"),
    ("seq-write-4jobs", "seq write 1 MiB, 4 jobs", "MiB/s"),
    ("seq-read-4jobs", "seq read 1 MiB, 4 jobs", "MiB/s"),
    ("rand-write-4k", "rand write 4 KiB, 4 jobs", "IOPS"),
    ("rand-read-4k", "rand read 4 KiB, 4 jobs", "IOPS"),
    ("md-create", "create, 4 threads", "ops/s"),
    ("md-stat", "stat, 4 threads", "ops/s"),
    ("md-delete", "unlink, 4 threads", "ops/s"),
]
# Targets of issue 2: (job, peer, minimum ratio CFS/peer).
GOALS = [
    ("seq-write-1job", "gluster", 2.0), ("seq-write-1job", "bindfs", 0.5),
    ("seq-write-4jobs", "gluster", 2.0), ("seq-write-4jobs", "bindfs", 0.5),
    ("seq-read-1job", "gluster", 2.0), ("seq-read-1job", "bindfs", 0.5),
    ("seq-read-4jobs", "gluster", 2.0), ("seq-read-4jobs", "bindfs", 0.5),
    ("md-create", "gluster", 5.0),
]


# Processes that do a target's work (besides fio and kernel threads).
DAEMONS = {
    "local": [],
    "bindfs": ["bindfs"],
    "gluster": ["glusterfs", "glusterfsd", "glusterd"],
    "cfs": ["cfs-meta", "cfs-storage", "cfs-fuse"],
}


def fio_summary(path):
    """Returns {mib_s, iops, runtime_s} summed over the jobs of one fio run."""
    with open(path) as f:
        d = json.load(f)
    bw = iops = 0.0
    runtime = 0
    for j in d["jobs"]:
        for rw in ("read", "write"):
            bw += j[rw]["bw"] / 1024.0
            iops += j[rw]["iops"]
            runtime = max(runtime, j[rw]["runtime"])
    return {"mib_s": bw, "iops": iops, "runtime_s": runtime / 1000.0}


def metric(summary, unit):
    return summary["mib_s"] if unit == "MiB/s" else summary["iops"]


def cpu_profile(out, target, job):
    """CPU seconds per process name during one job, and machine busy share."""
    try:
        with open(f"{out}/cpu/{target}.{job}.before.json") as f:
            a = json.load(f)
        with open(f"{out}/cpu/{target}.{job}.after.json") as f:
            b = json.load(f)
        with open(f"{out}/cpu/{target}.{job}.wall") as f:
            t0, t1 = map(float, f.read().split())
    except (OSError, ValueError):
        return None
    procs = {}
    # fio's job processes exit before the second snapshot: take their CPU time
    # from fio's own report instead.
    try:
        with open(f"{out}/raw/{target}.{job}.json") as f:
            fj = json.load(f)
        fio_s = 0.0
        for j in fj["jobs"]:
            # job_runtime is summed over the jobs of a group, as the CPU shares are.
            fio_s += (j["usr_cpu"] + j["sys_cpu"]) / 100.0 * j["job_runtime"] / 1000.0
        procs["fio (own report)"] = round(fio_s, 2)
    except (OSError, ValueError, KeyError):
        pass
    for name, sec in b["proc"].items():
        d = sec - a["proc"].get(name, 0.0)
        if d >= 0.05:
            procs[name] = round(d, 2)
    ownd = {}
    for name, sec in b.get("own", {}).items():
        d = sec - a.get("own", {}).get(name, 0.0)
        if d >= 0.0:
            ownd[name] = round(d, 2)
    wall = t1 - t0
    busy = b["machine"]["busy"] - a["machine"]["busy"]
    total = busy + b["machine"]["idle"] - a["machine"]["idle"]
    return {
        "wall_s": round(wall, 2),
        "machine_busy": round(busy / total, 3) if total > 0 else None,
        "proc_cpu_s": dict(sorted(procs.items(), key=lambda kv: -kv[1])),
        "own_cpu_s": ownd if "own" in b else None,
    }


def fmt(v, unit):
    if v is None:
        return "—"
    if unit == "MiB/s":
        return f"{v:,.0f}"
    return f"{v:,.0f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def build(out):
    machine = {}
    if os.path.exists(f"{out}/machine.json"):
        with open(f"{out}/machine.json") as f:
            machine = json.load(f)
    results = {}
    for job, _, unit in JOBS:
        for t in TARGETS:
            p = f"{out}/raw/{t}.{job}.json"
            if os.path.exists(p):
                s = fio_summary(p)
                s["value"] = metric(s, unit)
                s["unit"] = unit
                s["cpu"] = cpu_profile(out, t, job)
                results.setdefault(job, {})[t] = s
    present = [t for t in TARGETS if any(t in r for r in results.values())
               or glob.glob(f"{out}/log/{t}.failed")]

    def val(job, t):
        r = results.get(job, {}).get(t)
        return r["value"] if r else None

    lines = []
    lines.append("| job | unit | " + " | ".join(NAMES[t] for t in present) +
                 " | CFS/GlusterFS | CFS/bindfs |")
    lines.append("|---|---|" + "---:|" * len(present) + "---:|---:|")
    ratios = {}
    for job, label, unit in JOBS:
        if job not in results:
            continue
        row = [label, unit] + [fmt(val(job, t), unit) for t in present]
        rg = ratio(val(job, "cfs"), val(job, "gluster"))
        rb = ratio(val(job, "cfs"), val(job, "bindfs"))
        ratios[job] = {"cfs_over_gluster": rg, "cfs_over_bindfs": rb}
        row += [f"{rg:.2f}x" if rg is not None else "—", f"{rb:.2f}x" if rb is not None else "—"]
        lines.append("| " + " | ".join(row) + " |")

    goals = []
    glines = ["| target | measured | met |", "|---|---:|---|"]
    for job, peer, need in GOALS:
        r = ratio(val(job, "cfs"), val(job, peer))
        met = None if r is None else r >= need
        goals.append({"job": job, "peer": peer, "need": need, "ratio": r, "met": met})
        label = dict((j, l) for j, l, _ in JOBS)[job]
        glines.append(f"| {label}: CFS >= {need:g}x {NAMES[peer]} | "
                      f"{'—' if r is None else f'{r:.2f}x'} | "
                      f"{'n/a' if met is None else ('yes' if met else '**no**')} |")

    clines = ["| target | job | wall s | machine busy | the target's daemons, CPU s | all processes, CPU s (top 6) |",
              "|---|---|---:|---:|---|---|"]
    for job, label, _ in JOBS:
        for t in present:
            r = results.get(job, {}).get(t)
            if not r or not r["cpu"]:
                continue
            c = r["cpu"]
            top = ", ".join(f"{k} {v:.1f}" for k, v in list(c["proc_cpu_s"].items())[:6])
            busy = "—" if c["machine_busy"] is None else f"{100 * c['machine_busy']:.0f}%"
            ownv = c.get("own_cpu_s") or {}
            owns = ", ".join(f"{k} {v:.1f}" for k, v in sorted(ownv.items(), key=lambda kv: -kv[1])) or "—"
            clines.append(f"| {NAMES[t]} | {job} | {c['wall_s']:.1f} | {busy} | {owns} | {top} |")

    # CPU cost: seconds of CPU used by fio and the target's daemons per GiB
    # moved (sequential jobs) or microseconds per operation (the others). It
    # does not depend on how much CPU other work left to the run.
    elines = ["| job | unit | " + " | ".join(NAMES[t] for t in present) + " |",
              "|---|---|" + "---:|" * len(present)]
    for job, label, unit in JOBS:
        if job not in results:
            continue
        row = [label, "CPU s/GiB" if unit == "MiB/s" else "CPU us/op"]
        for t in present:
            r = results.get(job, {}).get(t)
            if not r or not r["cpu"]:
                row.append("—")
                continue
            pc = r["cpu"]["proc_cpu_s"]
            if r["cpu"].get("own_cpu_s") is not None:  # by pid: only this target's daemons
                daemons = sum(r["cpu"]["own_cpu_s"].values())
            else:  # older runs: by process name
                daemons = sum(pc.get(d, 0.0) for d in DAEMONS[t])
            cpu = pc.get("fio (own report)", 0.0) + daemons
            r["cpu"]["target_cpu_s"] = round(cpu, 2)
            if unit == "MiB/s":
                gib = r["mib_s"] * r["runtime_s"] / 1024.0
                v = cpu / gib if gib > 0 else None
                row.append("—" if v is None else f"{v:.2f}")
            else:
                ops = r["iops"] * r["runtime_s"]
                v = cpu / ops * 1e6 if ops > 0 else None
                row.append("—" if v is None else f"{v:,.0f}")
        elines.append("| " + " | ".join(row) + " |")

    failed = [t for t in TARGETS if os.path.exists(f"{out}/log/{t}.failed")]
    md = [f"# CFS benchmark run {machine.get('date', '')}", ""]
    if machine:
        md.append(f"Machine: {machine.get('cpus')} CPUs ({machine.get('cpu_model')}), "
                  f"{machine.get('mem_gib')} GiB RAM, kernel {machine.get('kernel')}, "
                  f"{machine.get('fio')}, CFS commit {machine.get('cfs_commit')}, "
                  f"bindfs {machine.get('bindfs_opts')}. Parameters: {machine.get('params')}"
                  + (" **(quick mode: harness check, figures not meaningful)**" if machine.get("quick") else ""))
        md.append("")
    if os.path.exists(f"{out}/log/loadavg"):
        with open(f"{out}/log/loadavg") as f:
            md.append("Load average (1, 5, 15 min) at the start and end of each target: " +
                      "; ".join(" ".join(l.split()[:5]) for l in f if l.strip()))
        md.append("")
    if failed:
        md.append("Targets that could not be set up: " + ", ".join(failed))
        md.append("")
    md += lines + ["", "Targets (issue 2):", ""] + glines
    md += ["", "CPU cost (fio plus the target's daemons; kernel threads not counted):", ""] + elines
    md += ["", "CPU use per job:", ""] + clines + [""]
    with open(f"{out}/results.md", "w") as f:
        f.write("\n".join(md))
    with open(f"{out}/results.json", "w") as f:
        json.dump({"machine": machine, "failed_targets": failed, "results": results,
                   "ratios": ratios, "goals": goals}, f, indent=2)
    print("\n".join(lines + [""] + glines))


# ---- bench/ec.sh (issue 3) ---------------------------------------------------

EC_SEQ = [j for j in JOBS if j[0].startswith("seq-")]
EC_RAND = [("rand-write-4k-1job", "rand write 4 KiB, 1 job", "IOPS"),
           ("rand-write-4k", "rand write 4 KiB, 4 jobs", "IOPS")]
EC_READS = [j for j in EC_SEQ if "read" in j[0]]


def ec_cpu_per_gib(out, t, job, s):
    """CPU seconds (fio + the target's daemons) per GiB moved, or None."""
    c = cpu_profile(out, t, job)
    if not c or not s["runtime_s"]:
        return None
    cpu = c["proc_cpu_s"].get("fio (own report)", 0.0) + sum((c.get("own_cpu_s") or {}).values())
    gib = s["mib_s"] * s["runtime_s"] / 1024.0
    return cpu / gib if gib > 0 else None


def build_ec(out):
    machine = {}
    if os.path.exists(f"{out}/machine.json"):
        with open(f"{out}/machine.json") as f:
            machine = json.load(f)
    ec, plain = machine.get("ec", "4+2"), machine.get("plain", "6+0")
    res = {}  # (target, job) -> summary
    for p in glob.glob(f"{out}/raw/*.json"):
        t, job = os.path.basename(p)[:-5].split(".", 1)
        try:
            res[(t, job)] = fio_summary(p)
        except (OSError, ValueError, KeyError):
            continue

    def val(t, job, unit="MiB/s"):
        r = res.get((t, job))
        return metric(r, unit) if r else None

    def x(r):
        return "—" if r is None else f"{r:.2f}x"

    md = [f"# CFS erasure-coding benchmark run {machine.get('date', '')}", ""]
    if machine:
        md.append(f"Machine: {machine.get('cpus')} CPUs ({machine.get('cpu_model')}), "
                  f"{machine.get('mem_gib')} GiB RAM, kernel {machine.get('kernel')}, "
                  f"{machine.get('fio')}, {machine.get('glusterfs')}, CFS commit "
                  f"{machine.get('cfs_commit')} ({machine.get('cfs_build')}), nice {machine.get('nice')}. "
                  f"{machine.get('workers')} S-workers; layouts {ec} and {plain}; killed S-workers "
                  f"{machine.get('kill')}; wiped S-worker {machine.get('wipe')}. "
                  f"Parameters: {machine.get('params')}"
                  + (" **(quick mode: harness check, figures not meaningful)**" if machine.get("quick") else ""))
        md.append("")
    failed = sorted(os.path.basename(p)[:-7] for p in glob.glob(f"{out}/log/*.failed"))
    if failed:
        md.append("Failed: " + ", ".join(failed) + " (see log/)")
        md.append("")

    # Sequential: the cost of parity, and GlusterFS disperse.
    md += [f"Sequential, MiB/s (higher is better); CPU s/GiB of fio plus the target's daemons in brackets:", "",
           f"| job | CFS {plain} | CFS {ec} | GlusterFS disperse {ec} | CFS {ec} / CFS {plain} | CFS {ec} / GlusterFS |",
           "|---|---:|---:|---:|---:|---:|"]
    ratios = {}
    for job, label, unit in EC_SEQ:
        cells = []
        for t in ("cfs-plain", "cfs-ec", "gluster-ec"):
            v = val(t, job)
            c = ec_cpu_per_gib(out, t, job, res[(t, job)]) if v is not None else None
            cells.append("—" if v is None else f"{v:,.0f}" + ("" if c is None else f" ({c:.1f})"))
        rp = ratio(val("cfs-ec", job), val("cfs-plain", job))
        rg = ratio(val("cfs-ec", job), val("gluster-ec", job))
        ratios[job] = {"ec_over_plain": rp, "ec_over_gluster_disperse": rg}
        md.append(f"| {label} | " + " | ".join(cells) + f" | {x(rp)} | {x(rg)} |")

    # Degraded reads of the same K+M files.
    md += ["", f"Degraded sequential reads of the same {ec} files, MiB/s (down0 = healthy, just before the kills):", "",
           "| job | healthy | 1 S-worker down | 2 S-workers down | 1 down / healthy | 2 down / healthy |",
           "|---|---:|---:|---:|---:|---:|"]
    for job, label, unit in EC_READS:
        h, d1, d2 = (val(f"cfs-ec-down{n}", job) for n in range(3))
        r1, r2 = ratio(d1, h), ratio(d2, h)
        ratios[f"degraded:{job}"] = {"down1_over_healthy": r1, "down2_over_healthy": r2}
        md.append(f"| {label} | {fmt(h, unit)} | {fmt(d1, unit)} | {fmt(d2, unit)} | {x(r1)} | {x(r2)} |")

    # Partial-stripe random writes.
    md += ["", f"Partial-stripe 4 KiB random writes (psync, one request in flight per job) on a pre-written file, IOPS:", "",
           f"| job | CFS {ec} | CFS {plain} | {ec} / {plain} |", "|---|---:|---:|---:|"]
    for job, label, unit in EC_RAND:
        e, p = val("cfs-ec", job, unit), val("cfs-plain", job, unit)
        r = ratio(e, p)
        ratios[job] = {"ec_over_plain": r}
        md.append(f"| {label} | {fmt(e, unit)} | {fmt(p, unit)} | {x(r)} |")

    # Rebuild.
    rebuild = None
    if os.path.exists(f"{out}/rebuild.json"):
        with open(f"{out}/rebuild.json") as f:
            rebuild = json.load(f)
        md += ["", "Rebuild of one wiped S-worker (`cfs rebuild`, until `cfs rebuild status --json` says idle):", "",
               "| bytes_total | bytes_done | elapsed | rate (bytes_total / elapsed) | wiped target held | rate from that |",
               "|---:|---:|---:|---:|---:|---:|",
               f"| {rebuild['bytes_total'] / 1048576:,.0f} MiB | {rebuild.get('bytes_done', 0) / 1048576:,.0f} MiB | "
               f"{rebuild['elapsed_s']:.1f} s | "
               f"{'—' if rebuild['mib_s'] is None else format(rebuild['mib_s'], ',.1f') + ' MiB/s'} | "
               f"{rebuild['wiped_target_bytes'] / 1048576:,.0f} MiB | "
               f"{'—' if rebuild['mib_s_from_wiped_bytes'] is None else format(rebuild['mib_s_from_wiped_bytes'], ',.1f') + ' MiB/s'} |"]
        if not rebuild.get("saw_running"):
            md.append("")
            md.append("(no poll saw state \"running\": the rebuild ended within the first second, or did not start)")

    # Targets of issue 3.
    goals = []
    for job in ("seq-write-1job", "seq-write-4jobs"):
        goals.append((f"{job}: CFS {ec} >= 0.70x CFS {plain}", ratios.get(job, {}).get("ec_over_plain"), 0.70))
        goals.append((f"{job}: CFS {ec} >= 2x GlusterFS disperse {ec}",
                      ratios.get(job, {}).get("ec_over_gluster_disperse"), 2.0))
    for job, _, _ in EC_READS:
        for n in (1, 2):
            goals.append((f"{job}, {n} S-worker{'s' if n > 1 else ''} down: >= 0.60x healthy",
                          ratios.get(f"degraded:{job}", {}).get(f"down{n}_over_healthy"), 0.60))
    gl = ["| target | measured | met |", "|---|---:|---|"]
    gj = []
    for label, r, need in goals:
        met = None if r is None else r >= need
        gj.append({"target": label, "need": need, "ratio": r, "met": met})
        gl.append(f"| {label} | {x(r)} | {'n/a' if met is None else ('yes' if met else '**no**')} |")
    md += ["", "Targets (issue 3):", ""] + gl + [""]
    if os.path.exists(f"{out}/log/loadavg"):
        with open(f"{out}/log/loadavg") as f:
            md += ["Load average (1, 5, 15 min) at the start of each job:", "", "```"] + \
                  [l.rstrip() for l in f if l.strip()] + ["```", ""]

    with open(f"{out}/results.md", "w") as f:
        f.write("\n".join(md))
    with open(f"{out}/results.json", "w") as f:
        json.dump({"machine": machine, "failed": failed,
                   "results": {f"{t}.{j}": s for (t, j), s in sorted(res.items())},
                   "ratios": ratios, "rebuild": rebuild, "goals": gj}, f, indent=2)
    print("\n".join(md))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--one")
    ap.add_argument("--out")
    ap.add_argument("--ec", action="store_true")
    a = ap.parse_args()
    if a.one:
        s = fio_summary(a.one)
        print(f"{s['mib_s']:.0f} MiB/s, {s['iops']:.0f} IOPS, {s['runtime_s']:.1f} s")
    elif a.out and a.ec:
        build_ec(a.out)
    elif a.out:
        build(a.out)
    else:
        ap.print_help()
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
