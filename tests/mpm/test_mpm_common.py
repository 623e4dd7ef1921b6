"""Pure process-management helpers: maintenance decisions, exit decoding, timeout queues."""

import os
import signal

import pytest

from mpmd.mpm.common import MAX_SPAWN_RATE, SlotView, decode_exit, maintain, reap, fork_child
from mpmd.mpm.timeouts import TimeoutQueue


def views(pids_idle, total):
    out = [SlotView(i, pid, idle) for i, (pid, idle) in enumerate(pids_idle)]
    out += [SlotView(i, 0, 0) for i in range(len(out), total)]
    return out


def test_enough_idle_does_nothing_and_resets_rate():
    d = maintain(views([(1, 1)] * 6, 10), min_idle=5, max_idle=10, max_daemons=10, spawn_rate=8)
    assert d.spawn == () and not d.kill_one and d.next_rate == 1


def test_too_many_idle_retires_one():
    d = maintain(views([(1, 1)] * 12, 20), min_idle=5, max_idle=10, max_daemons=20, spawn_rate=4)
    assert d.kill_one and d.spawn == () and d.next_rate == 1


def test_spawn_rate_doubles_up_to_32():
    rates = []
    rate = 1
    for _ in range(8):
        d = maintain(views([(1, 0)] * 2, 200), min_idle=150, max_idle=160, max_daemons=200,
                     spawn_rate=rate)
        rates.append(len(d.spawn))
        rate = d.next_rate
    assert rates == [1, 2, 4, 8, 16, 32, 32, 32]
    assert rate == MAX_SPAWN_RATE


def test_busy_message_from_rate_8():
    assert not maintain(views([], 50), min_idle=5, max_idle=10, max_daemons=50, spawn_rate=4).seems_busy
    assert maintain(views([], 50), min_idle=5, max_idle=10, max_daemons=50, spawn_rate=8).seems_busy


def test_spawn_uses_free_slots_only_below_max_daemons():
    d = maintain(views([(1, 0), (0, 0), (1, 0)], 4), min_idle=5, max_idle=10, max_daemons=4,
                 spawn_rate=4)
    assert d.spawn == (1, 3)


def test_full_reports_reached_max():
    d = maintain(views([(1, 0)] * 4, 4), min_idle=2, max_idle=3, max_daemons=4, spawn_rate=2)
    assert d.reached_max and d.spawn == () and d.next_rate == 1


def test_quiescing_processes_do_not_count_as_idle():
    slots = [SlotView(0, 5, 1, quiescing=True), SlotView(1, 0, 0)]
    d = maintain(slots, min_idle=1, max_idle=2, max_daemons=2, spawn_rate=1)
    assert d.spawn == (1,)


def test_decode_exit_code_and_signal():
    pid = fork_child(lambda: 3)
    _, status = os.waitpid(pid, 0)
    info = decode_exit(status)
    assert (info.code, info.signo) == (3, None) and "exit status 3" in info.describe()
    pid = os.fork()
    if pid == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    info = decode_exit(status)
    assert info.signo == signal.SIGKILL and "SIGKILL" in info.describe()


def test_reap_collects_without_blocking():
    pid = fork_child(lambda: 0)
    deadline_hits = []
    for _ in range(500):
        dead = reap()
        if dead:
            deadline_hits = dead
            break
        os.sched_yield()
        import time
        time.sleep(0.01)
    assert deadline_hits and deadline_hits[0][0] == pid and deadline_hits[0][1].clean


def test_timeout_queue_expires_from_head_and_skips_removed():
    q: TimeoutQueue[str] = TimeoutQueue(5.0)
    q.append("a", 0.0)
    q.append("b", 1.0)
    q.append("c", 2.0)
    q.remove("b")
    assert q.next_deadline() == 5.0
    assert q.expire(6.5) == ["a"]
    assert q.expire(7.0) == ["c"] and len(q) == 0


def test_timeout_queue_reappend_moves_item():
    q: TimeoutQueue[str] = TimeoutQueue(5.0)
    q.append("a", 0.0)
    q.append("a", 3.0)
    assert q.expire(6.0) == []
    assert q.expire(8.0) == ["a"]


def test_a_signal_sent_to_a_new_child_before_its_handlers_never_reaches_the_master(monkeypatch):
    """The child pauses right after fork (the test hook widens that window); a SIGTERM sent to it
    then must wait for the child's own SIG_DFL and kill it -- not run the master's handler,
    which would write "stop" into the master's self-pipe (a restart becoming a shutdown)."""
    import time
    from mpmd.supervisor.signals import SignalQueue
    from mpmd.mpm.common import TEST_PAUSE_AFTER_FORK_ENV

    queue = SignalQueue()
    queue.install()
    try:
        def child_signals():
            queue.close_in_child()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

        monkeypatch.setenv(TEST_PAUSE_AFTER_FORK_ENV, "1.5")
        pid = fork_child(lambda: 0, child_signals)
        monkeypatch.delenv(TEST_PAUSE_AFTER_FORK_ENV)
        time.sleep(0.3)                       # the child is in its pause
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
        assert decode_exit(status).signo == signal.SIGTERM, decode_exit(status).describe()
        assert "stop" not in queue.drain()    # only the SIGCHLD of its death, nothing from it
    finally:
        queue.restore()


# --- Rule 5: which deaths are replaced at once (the rest wait for maintenance) ---------------

def _mpm(name: str, generation: int = 2):
    from mpmd.core.log import ErrorLog
    from mpmd.mpm import load_mpm_class
    from mpmd.mpm.base import MPMState, Runtime
    from tests.support.confbuilder import directive_values
    cls = load_mpm_class(name)
    mpm = cls(directive_values(cls.DIRECTIVES), [], None,
              Runtime(log=ErrorLog(), generation=generation))
    mpm.state = MPMState.RUNNING
    return mpm


def _old_child(generation: int = 2, lived_s: float = 5.0, retiring: bool = False):
    import time
    from mpmd.mpm.common import Child
    return Child(4242, 0, generation, time.monotonic() - lived_s, retiring)


KILLED = decode_exit(signal.SIGKILL)          # a raw status: killed by SIGKILL
EXIT_0 = decode_exit(0)


@pytest.mark.parametrize("name", ["prefork", "worker", "event", "nginx"])
def test_a_child_killed_after_its_first_second_is_replaced_at_once(name):
    assert _mpm(name).replaces_at_once(_old_child(), KILLED)


@pytest.mark.parametrize("name", ["prefork", "worker", "event", "nginx"])
def test_a_child_dying_right_after_start_waits_for_maintenance(name):
    from mpmd.mpm.common import RESPAWN_AT_ONCE_AFTER_S
    young = _old_child(lived_s=RESPAWN_AT_ONCE_AFTER_S / 2)
    assert not _mpm(name).replaces_at_once(young, KILLED)


def test_retiring_old_generation_and_stopping_children_are_not_replaced():
    from mpmd.mpm.base import MPMState
    mpm = _mpm("event")
    assert not mpm.replaces_at_once(_old_child(retiring=True), KILLED)
    assert not mpm.replaces_at_once(_old_child(generation=1), KILLED)
    mpm.state = MPMState.STOPPING
    assert not mpm.replaces_at_once(_old_child(), KILLED)
    mpm.state = MPMState.RUNNING
    mpm.runtime.retained["halt"] = True
    assert not mpm.replaces_at_once(_old_child(), KILLED)


def test_a_clean_exit_is_maintenance_s_except_on_the_fixed_count_nginx_mpm():
    """prefork/worker/event: the pipe of death or MaxConnectionsPerChild; the spare bounds
    decide.  nginx: WorkerProcesses is a fixed count, every exit is replaced."""
    assert not _mpm("prefork").replaces_at_once(_old_child(), EXIT_0)
    assert not _mpm("worker").replaces_at_once(_old_child(), EXIT_0)
    assert _mpm("nginx").replaces_at_once(_old_child(), EXIT_0)


def test_process_titles():
    from mpmd.mpm.common import child_title, master_title
    assert master_title("event", ["-f", "/etc/mpmd/httpd.conf"]) == \
        "mpmd: master (event) -f /etc/mpmd/httpd.conf"
    assert master_title("prefork", []) == "mpmd: master (prefork)"
    assert child_title("child", "event", 3) == "mpmd: child (event) generation 3"
    assert child_title("worker", "nginx", 0) == "mpmd: worker (nginx) generation 0"


def test_without_setproctitle_titles_are_skipped(monkeypatch):
    import mpmd.mpm.common as common
    monkeypatch.setattr(common, "_setproctitle", None)
    assert common.set_proctitle("mpmd: master (event)") is False


# --- Rule 9: what a child would build alike is built once ------------------------------------

def test_the_pipe_of_death_is_made_once_per_server():
    mpm = _mpm("prefork")
    before = len(os.listdir("/proc/self/fd"))
    pod = mpm.pod
    try:
        mpm.pod.drain()
        mpm.pod.signal(0)
        assert mpm.pod is pod                                  # retained with the runtime
        assert len(os.listdir("/proc/self/fd")) == before + 2  # one pipe, not one per use
    finally:
        os.close(pod.r)
        os.close(pod.w)


def test_drivers_take_the_policy_the_master_preloaded(tmp_path):
    from mpmd.config.loader import load_config
    from mpmd.core.log import ErrorLog
    from mpmd.mpm import load_mpm_class
    from mpmd.mpm.base import Runtime
    cfg = load_config(text=f"LoadModule mpm_prefork_module modules/mod_mpm_prefork.so\n"
                           f'DocumentRoot "{tmp_path}"\n')
    mpm = load_mpm_class("prefork")(cfg, [], None, Runtime(log=ErrorLog()))
    assert mpm.new_driver(None).policy is not mpm.new_driver(None).policy   # -X: no preload
    mpm.preload()
    assert mpm.new_driver(None).policy is mpm._preloaded_policy
    assert mpm.new_driver(None).buf is None             # the read buffer waits for a read


def test_a_child_gives_every_signal_of_the_masters_table_its_own_disposition():
    """child_signals does not restore the master's handlers first (Rule 9): it sets each one."""
    from mpmd.mpm.base import SIGNALS
    from mpmd.supervisor.signals import SignalQueue

    queue = SignalQueue()
    queue.install()
    try:
        mpm = _mpm("prefork")
        mpm.runtime.signals = queue

        def child_main() -> int:
            masters = [s.signo for s in SIGNALS if signal.getsignal(s.signo) == queue._handler]
            return 1 if masters else 0

        pid = fork_child(child_main, mpm.child_signals)
        _, status = os.waitpid(pid, 0)
        assert decode_exit(status).code == 0, "a master's handler is left in the child"
    finally:
        queue.restore()
