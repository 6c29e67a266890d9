#!/usr/bin/env python3
"""Watch a migrating test guest from outside the lab: its commits and the CPU it costs.

    heartbeat-watch.py --out RESULT.json --src CONSOLE --dst CONSOLE \
        [--netns /run/netns/NAME]... [--comm REGEX]

Polls both console files every 5 ms and stamps each new "commit seq=" line with this
machine's monotonic clock: the guest's own clock stops while it is paused, so only wall
time shows the gap. A file that does not exist yet is read from its start once it appears.

CPU: every process whose /proc/PID/comm matches --comm and that lives in one of the given
network namespaces (the lab hosts) is followed; /proc/PID/stat utime+stime is read at
SIGUSR1 (the migration starts), then on every poll (a process that exits keeps its last
reading, one started later counts from zero), up to the first commit on the destination
(the guest runs there: the migration is over) or SIGUSR2, whichever comes first. QEMU's
vCPU threads ("CPU n/TCG", named with -name debug-threads=on) are also counted apart: that
is the guest's own work, which goes on whatever migrates it.

After SIGUSR2 it waits until the destination's console has shown a commit (at most
--settle-s seconds), writes RESULT.json and exits:
    max_gap_ms    longest gap between consecutive commits from the last one before
                  SIGUSR1 up to the first one on the destination
    base_gap_ms   longest gap between commits before SIGUSR1 (the guest's normal jitter)
    first_dst_ms  SIGUSR1 -> first commit on the destination
    cpu_s         CPU seconds of the followed processes in that window
    vcpu_s        of which in QEMU's vCPU threads
    cpu_window_ms the window's length
    procs         per process: pid, comm, netns, cpu_s, vcpu_s
    commits       commits seen on src / dst
It writes "ready" to RESULT.json.ready once it is polling.
"""
import argparse
import json
import os
import re
import signal
import sys
import time

POLL_S = 0.005
SCAN_S = 0.05
TICK = os.sysconf("SC_CLK_TCK")


class Console:
    def __init__(self, path, role, from_end):
        self.path, self.role = path, role
        self.f = None
        self.buf = b""
        self.from_end = from_end

    def poll(self, now, events):
        if self.f is None:
            try:
                self.f = open(self.path, "rb")
            except OSError:
                return
            if self.from_end:
                self.f.seek(0, os.SEEK_END)
        data = self.f.read()
        if not data:
            return
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            if line.startswith(b"commit seq="):
                events.append((now, self.role))


def ns_inode(path):
    return os.stat(path).st_ino


def cpu_ticks(path):
    try:
        with open(path, "rb") as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(b")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)


def read_comm(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


class Counter:
    """utime+stime of one /proc/.../stat: baseline, and the last reading while it lived."""

    def __init__(self, path, counting):
        self.path = path
        self.last = cpu_ticks(path) or 0
        # found before the start: counted from then; found later: it started in the window
        self.base = 0 if counting else self.last

    def sample(self):
        t = cpu_ticks(self.path)
        if t is not None and t >= self.last:
            self.last = t

    def seconds(self):
        return (self.last - self.base) / TICK


class Procs:
    def __init__(self, netns, comm_re):
        self.inodes = {ns_inode(p): os.path.basename(p) for p in netns}
        self.comm_re = re.compile(comm_re) if comm_re else None
        self.seen = {}  # pid -> {"comm", "netns", "cpu": Counter, "vcpus": {tid: Counter}}
        self.counting = False
        self.last_scan = 0.0

    def scan(self):
        if not self.comm_re or not self.inodes:
            return
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) in self.seen:
                continue
            try:
                ino = os.stat(f"/proc/{d}/ns/net").st_ino
            except OSError:
                continue
            comm = read_comm(f"/proc/{d}/comm") if ino in self.inodes else None
            if comm is None or not self.comm_re.search(comm):
                continue
            self.seen[int(d)] = {"comm": comm, "netns": self.inodes[ino],
                                 "cpu": Counter(f"/proc/{d}/stat", self.counting), "vcpus": {}}
        # QEMU's vCPU threads ("CPU 0/TCG" with -name debug-threads=on): the guest's own work
        for pid, p in self.seen.items():
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for t in tids:
                if int(t) in p["vcpus"]:
                    continue
                comm = read_comm(f"/proc/{pid}/task/{t}/comm")
                if comm and re.match(r"CPU \d+/", comm):
                    p["vcpus"][int(t)] = Counter(f"/proc/{pid}/task/{t}/stat", self.counting)

    def sample(self):
        for p in self.seen.values():
            p["cpu"].sample()
            for c in p["vcpus"].values():
                c.sample()

    def start(self):
        self.scan()
        self.sample()
        for p in self.seen.values():
            for c in [p["cpu"], *p["vcpus"].values()]:
                c.base = c.last
        self.counting = True

    def stop(self):
        self.sample()
        self.counting = False
        return [{"pid": pid, "comm": p["comm"], "netns": p["netns"],
                 "cpu_s": round(p["cpu"].seconds(), 2),
                 "vcpu_s": round(sum(c.seconds() for c in p["vcpus"].values()), 2)}
                for pid, p in sorted(self.seen.items())]


def max_gap(times):
    return max((b - a for a, b in zip(times, times[1:])), default=None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--dst", required=True)
    ap.add_argument("--netns", action="append", default=[])
    ap.add_argument("--comm", default="")
    ap.add_argument("--settle-s", type=float, default=15.0)
    a = ap.parse_args()

    marks = {}
    signal.signal(signal.SIGUSR1, lambda *_: marks.setdefault("start", None))
    signal.signal(signal.SIGUSR2, lambda *_: marks.setdefault("end", None))
    signal.signal(signal.SIGTERM, lambda *_: marks.setdefault("term", None))

    src = Console(a.src, "src", from_end=True)
    # the destination's console did not exist before the migration, or is a fresh file
    dst = Console(a.dst, "dst", from_end=False)
    procs = Procs(a.netns, a.comm)
    events = []
    procs.scan()
    with open(a.out + ".ready", "w") as f:
        f.write("ready\n")
    t_start = t_end = t_cpu = None
    result_procs = []
    deadline = None
    while "term" not in marks:
        now = time.monotonic()
        src.poll(now, events)
        dst.poll(now, events)
        if "start" in marks and t_start is None:
            t_start = now
            procs.start()
        if t_start is not None and t_cpu is None:
            if now - procs.last_scan >= SCAN_S:
                procs.scan()
                procs.last_scan = now
            # the migration is over for the CPU count once the guest runs on the destination
            if "end" in marks or any(r == "dst" and t >= t_start for t, r in events):
                t_cpu = now
                result_procs = procs.stop()
            else:
                procs.sample()
        if "end" in marks and t_end is None and t_start is not None:
            t_end = now
            deadline = now + a.settle_s
        if t_end is not None:
            if any(r == "dst" and t >= t_end for t, r in events) or now >= deadline:
                break
        time.sleep(POLL_S)

    res = {"max_gap_ms": None, "base_gap_ms": None, "first_dst_ms": None, "cpu_s": None,
           "vcpu_s": None, "cpu_window_ms": None,
           "procs": result_procs,
           "commits": {"src": sum(1 for _, r in events if r == "src"),
                       "dst": sum(1 for _, r in events if r == "dst")}}
    if t_start is not None and t_end is not None:
        before = [t for t, _ in events if t < t_start]
        first_dst = next((t for t, r in events if r == "dst" and t >= t_start), None)
        window = before[-1:] + [t for t, _ in events if t >= t_start and
                                (first_dst is None or t <= first_dst)]
        if first_dst is not None:
            g = max_gap(window)
            res["max_gap_ms"] = round(g * 1000) if g is not None else None
            res["first_dst_ms"] = round((first_dst - t_start) * 1000)
        g = max_gap(before)
        res["base_gap_ms"] = round(g * 1000) if g is not None else None
        res["cpu_s"] = round(sum(p["cpu_s"] for p in result_procs), 2)
        res["vcpu_s"] = round(sum(p["vcpu_s"] for p in result_procs), 2)
        res["cpu_window_ms"] = round((t_cpu - t_start) * 1000)
    with open(a.out + ".tmp", "w") as f:
        json.dump(res, f)
    os.rename(a.out + ".tmp", a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
