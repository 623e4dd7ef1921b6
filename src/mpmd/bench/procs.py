"""Process-tree accounting from /proc: PSS, process and thread counts.

Rule 1: a server is the tree rooted at the pid we started; children are found by scanning
/proc/*/stat for their ppid, so forks and re-forks made after start-up are counted.
Rule 2: memory is PSS (proportional set size) from /proc/PID/smaps_rollup: pages shared
between a forked master and its children are split between them, so the sum over the tree
is the real cost of the server -- RSS would count shared pages once per process.
Rule 3: processes vanish while we read; a vanished process simply contributes nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class TreeUsage:
    """Resource use of one process tree at one moment."""

    pss_bytes: int
    processes: int
    threads: int

    def to_dict(self) -> dict[str, int]:
        return {"pss_bytes": self.pss_bytes, "processes": self.processes,
                "threads": self.threads}


def parent_of(pid: int, proc: Path = PROC) -> int | None:
    """The ppid field of /proc/PID/stat (the comm field may contain spaces and parens)."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    return int(fields[1]) if len(fields) > 1 else None


def children_map(proc: Path = PROC) -> dict[int, list[int]]:
    """ppid -> [pid, ...] for every live process."""
    kids: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            ppid = parent_of(int(entry.name), proc)
            if ppid is not None:
                kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def process_tree(root: int, proc: Path = PROC) -> list[int]:
    """root and all its descendants that are alive now (root first)."""
    kids = children_map(proc)
    if not (proc / str(root)).exists():
        return []
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(kids.get(pid, ()))
    return tree


def children(pid: int, proc: Path = PROC) -> list[int]:
    """The live direct children of pid (a master's children), in pid order."""
    return sorted(children_map(proc).get(pid, ()))


def open_fds(pid: int, proc: Path = PROC) -> int:
    """How many file descriptors one process has open (0 when it is gone or unreadable)."""
    try:
        return len(os.listdir(proc / str(pid) / "fd"))
    except OSError:
        return 0


def tree_fds(root: int, proc: Path = PROC) -> int:
    """File descriptors open in root's whole tree (a leak shows as a count that keeps growing)."""
    return sum(open_fds(p, proc) for p in process_tree(root, proc))


def _status_field(pid: int, name: str, proc: Path) -> int:
    try:
        for line in (proc / str(pid) / "status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def pss_bytes(pid: int, proc: Path = PROC) -> int:
    """PSS of one process in bytes (0 when it is gone or unreadable)."""
    try:
        for line in (proc / str(pid) / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree_usage(root: int, proc: Path = PROC) -> TreeUsage:
    """PSS, process count and thread count summed over root's tree."""
    pids = process_tree(root, proc)
    live = [p for p in pids if (proc / str(p)).exists()]
    return TreeUsage(
        pss_bytes=sum(pss_bytes(p, proc) for p in live),
        processes=len(live),
        threads=sum(_status_field(p, "Threads", proc) for p in live),
    )


def cpu_split(pid: int, proc: Path = PROC) -> tuple[float, float]:
    """(user, system) CPU seconds of one process (fields 14 and 15 of /proc/PID/stat)."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return 0.0, 0.0
    fields = stat[stat.rfind(")") + 2:].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid: int, proc: Path = PROC) -> float:
    """utime + stime of one process, in seconds."""
    return sum(cpu_split(pid, proc))


def tree_cpu_split(root: int, proc: Path = PROC) -> tuple[float, float]:
    """(user, system) CPU seconds used so far by the live processes of root's tree: user is
    the server's own code, system the kernel working for it (sockets, scheduling, faults)."""
    splits = [cpu_split(p, proc) for p in process_tree(root, proc)]
    return sum(u for u, _ in splits), sum(s for _, s in splits)


def tree_cpu_seconds(root: int, proc: Path = PROC) -> float:
    """CPU time used so far by the live processes of root's tree."""
    return sum(tree_cpu_split(root, proc))


def machine_busy_seconds(proc: Path = PROC) -> float:
    """CPU seconds the whole machine has spent not idle, summed over its CPUs (the first line
    of /proc/stat: everything but idle and iowait; steal counts, as time the lab lost)."""
    try:
        fields = (proc / "stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return 0.0
    ticks = [int(x) for x in fields[1:9]]        # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def raise_nofile_limit() -> tuple[int, int]:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit; returns (soft, hard) after."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def self_pid() -> int:
    return os.getpid()
