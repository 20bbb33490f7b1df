#!/usr/bin/env python3
"""Prints a JSON snapshot of CPU time: per process name (user+system seconds of
all live processes, threads included) and the machine's busy/idle totals from
/proc/stat. bench/run.sh takes one before and one after each fio job; the
difference says which process used the CPU during the job (a coarse profile).
Processes that exit during the job are missed, so the runner keeps the daemons
alive across a job and fio's own time is in fio's JSON.

  cpu_snapshot.py [PID...]   PIDs: the target's own daemons, reported apart
                             ("own") so that same-named processes of other
                             work on the machine do not count."""
import json
import os
import sys

TICK = os.sysconf("SC_CLK_TCK")


def per_process():
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                s = f.read()
        except OSError:
            continue
        comm = s[s.index("(") + 1:s.rindex(")")]
        fields = s[s.rindex(")") + 2:].split()
        # fields[11], fields[12] are utime, stime (fields 14, 15 of stat(5)).
        ticks = int(fields[11]) + int(fields[12])
        if comm.startswith(("kworker", "ksoftirqd", "kswapd", "jbd2", "rcu")):
            comm = "kernel:" + comm.split("/")[0]
        out[comm] = out.get(comm, 0) + ticks
    return {k: v / TICK for k, v in out.items()}


def machine():
    with open("/proc/stat") as f:
        cpu = f.readline().split()[1:]
    v = [int(x) for x in cpu]
    idle = v[3] + v[4]
    return {"busy": (sum(v) - idle) / TICK, "idle": idle / TICK}


def own(pids):
    out = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                s = f.read()
        except OSError:
            continue
        comm = s[s.index("(") + 1:s.rindex(")")]
        fields = s[s.rindex(")") + 2:].split()
        out[comm] = out.get(comm, 0) + (int(fields[11]) + int(fields[12])) / TICK
    return out


print(json.dumps({"proc": per_process(), "own": own(sys.argv[1:]), "machine": machine()}))
