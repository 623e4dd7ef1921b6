"""PSS and process/thread counts on a real small process tree."""

import subprocess
import sys
import time

import pytest

from mpmd.bench.procs import parent_of, process_tree, raise_nofile_limit, tree_usage

# A parent with two children; one child runs 3 extra threads. Prints "ready" when all exist.
TREE = r"""
import subprocess, sys, threading, time
kids = [subprocess.Popen([sys.executable, "-c", CHILD]) for _ in range(2)]
kid_threads = [threading.Event() for _ in range(3)]
for e in kid_threads:
    threading.Thread(target=e.wait, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
for k in kids:
    k.kill()
"""
CHILD = "import time; time.sleep(60)"


@pytest.fixture
def tree():
    code = f"CHILD = {CHILD!r}\n" + TREE
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    yield proc
    proc.stdin.close()
    proc.wait(timeout=10)


def _wait_for(predicate, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met before the deadline")


def test_tree_is_root_and_its_children(tree):
    pids = _wait_for(lambda: len(process_tree(tree.pid)) == 3 and process_tree(tree.pid))
    assert pids[0] == tree.pid
    assert all(parent_of(p) == tree.pid for p in pids[1:])


def test_usage_sums_pss_processes_and_threads(tree):
    usage = _wait_for(lambda: (u := tree_usage(tree.pid)).processes == 3 and u)
    assert usage.threads >= 3 + 1 + 2   # parent: main + 3 waiters; each child: 1
    assert usage.pss_bytes > 0
    from mpmd.bench.procs import pss_bytes
    assert usage.pss_bytes >= pss_bytes(tree.pid)


def test_vanished_process_counts_nothing():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert tree_usage(proc.pid).processes == 0
    assert process_tree(proc.pid) == []


def test_raise_nofile_limit_reaches_the_hard_limit():
    import resource
    soft, hard = raise_nofile_limit()
    assert soft == hard or hard == resource.RLIM_INFINITY


def test_cpu_seconds_grow_with_work():
    from mpmd.bench.procs import tree_cpu_seconds
    proc = subprocess.Popen([sys.executable, "-c",
                             "import sys\nx=0\nfor i in range(3_000_000): x+=i\n"
                             "print('done', flush=True); sys.stdin.read()"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "done"
        assert tree_cpu_seconds(proc.pid) > 0
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


def test_cpu_split_tells_user_code_from_kernel_work():
    """A child that only computes spends user time; one that only makes system calls
    spends system time: the split is the kernel's own accounting, per process."""
    from mpmd.bench.procs import tree_cpu_split
    compute = "x=0\nfor i in range(3_000_000): x+=i\n"
    syscalls = "import os\nfor i in range(200_000): os.stat('/')\n"
    splits = {}
    for name, code in (("compute", compute), ("syscalls", syscalls)):
        proc = subprocess.Popen([sys.executable, "-c",
                                 code + "print('done', flush=True)\nimport sys; sys.stdin.read()"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "done"
            splits[name] = tree_cpu_split(proc.pid)
        finally:
            proc.stdin.close()
            proc.wait(timeout=10)
    user, system = splits["compute"]
    assert user > system
    user, system = splits["syscalls"]
    assert system > 0


def test_machine_busy_seconds_counts_all_but_idle_and_iowait(tmp_path):
    import os
    from mpmd.bench.procs import machine_busy_seconds
    hz = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal guest guest_nice
    (tmp_path / "stat").write_text(f"cpu  {hz} 0 {hz} {50 * hz} {7 * hz} 0 0 {hz} 0 0\n"
                                   "cpu0 1 2 3 4 5 6 7 8 9 10\n")
    assert machine_busy_seconds(tmp_path) == pytest.approx(3.0)
    assert machine_busy_seconds(tmp_path / "missing") == 0.0
    assert machine_busy_seconds() > 0                      # the real /proc/stat


@pytest.mark.timeout(30)
def test_wait_quiet_is_bounded_and_returns_the_seconds_waited():
    from mpmd.bench.lab import wait_quiet
    assert wait_quiet((), 0.0) < 0.1                       # no limit: no wait
    assert 0.9 < wait_quiet((), 5.0, quiet_cpu_s=1e9) < 2.5  # the first second is quiet enough
    assert 2.9 < wait_quiet((), 3.0, quiet_cpu_s=-1.0) < 5.0  # never quiet: the limit holds
