"""BlockingPool (mpm/nginx/pool.py) on a real event loop and real threads."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from mpmd.mpm.nginx.pool import BlockingPool


class CountingPool(BlockingPool):
    """Counts how often the loop was woken to take results."""

    drains = 0

    def _drain(self) -> None:
        self.drains += 1
        super()._drain()


def run_calls(pool: BlockingPool, loop: asyncio.AbstractEventLoop, fns: list) -> list:
    """Call every fn through the pool; returns (result, error, thread) as ``then`` saw them."""
    seen: list = []
    finished = loop.create_future()

    def then(result, error):
        seen.append((result, error, threading.current_thread()))
        if len(seen) == len(fns):
            finished.set_result(None)

    for fn in fns:
        pool.call(fn, (), then)
    loop.run_until_complete(asyncio.wait_for(finished, 10))
    return seen


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_results_and_errors_come_back_on_the_loop_thread(loop) -> None:
    pool = BlockingPool(loop, 4)
    boom = ValueError("boom")

    def fail():
        raise boom

    seen = run_calls(pool, loop, [lambda: 1, fail, lambda: 3])
    assert sorted(r for r, e, _ in seen if e is None) == [1, 3]
    assert [e for _, e, _ in seen if e is not None] == [boom]
    assert all(th is threading.main_thread() for _, _, th in seen)
    pool.shutdown()


def test_results_that_finish_together_wake_the_loop_once(loop) -> None:
    pool = CountingPool(loop, 1)
    gate = threading.Event()
    started = threading.Event()

    def first():
        started.set()
        gate.wait(5)
        return 0

    fns = [first] + [lambda i=i: i for i in range(1, 50)]
    seen: list = []
    finished = loop.create_future()

    def then(result, error):
        seen.append(result)
        if len(seen) == len(fns):
            finished.set_result(None)

    for fn in fns:
        pool.call(fn, (), then)
    loop.run_until_complete(asyncio.sleep(0))   # the end of this iteration queues them
    assert started.wait(5)
    gate.set()
    time.sleep(0.2)            # the loop is not running: every job finishes before it looks
    loop.run_until_complete(asyncio.wait_for(finished, 10))
    assert seen == list(range(50))          # one thread: FIFO
    assert pool.drains == 1
    pool.shutdown()


def test_at_most_size_jobs_run_at_once_and_threads_are_reused(loop) -> None:
    pool = BlockingPool(loop, 3)
    lock = threading.Lock()
    running = [0, 0]                        # now, most

    def job():
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1

    run_calls(pool, loop, [job] * 12)
    assert running[1] == 3 and len(pool.threads) == 3
    pool.shutdown()
    quiet = BlockingPool(loop, 8)
    for _ in range(5):                      # one at a time: one thread is enough
        run_calls(quiet, loop, [lambda: None])
        time.sleep(0.01)                    # let it go back to idle
    assert len(quiet.threads) == 1
    quiet.shutdown()


def test_it_is_an_executor_for_run_in_executor(loop) -> None:
    pool = BlockingPool(loop, 2)
    assert loop.run_until_complete(loop.run_in_executor(pool, pow, 2, 10)) == 1024
    with pytest.raises(ZeroDivisionError):
        loop.run_until_complete(loop.run_in_executor(pool, lambda: 1 / 0))
    assert pool.submit(int, "7", base=8).result(5) == 7
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(int, "1")


def test_shutdown_cancels_what_has_not_started(loop) -> None:
    pool = BlockingPool(loop, 1)
    gate = threading.Event()
    running = pool.submit(gate.wait, 5)
    waiting = pool.submit(int, "1")
    time.sleep(0.05)
    pool.shutdown(wait=False, cancel_futures=True)
    assert waiting.cancelled()
    gate.set()
    assert running.result(5) is True


def test_calls_of_one_loop_iteration_reach_the_threads_together_at_its_end(loop) -> None:
    """No thread wakes while the loop is still busy in the iteration that made the calls."""
    pool = BlockingPool(loop, 4)
    started: list[float] = []
    handed: list[float] = []

    async def one_iteration_then_wait():
        done = [loop.create_future() for _ in range(5)]
        for fut in done:
            pool.call(lambda: started.append(time.monotonic()), (),
                      lambda r, e, fut=fut: fut.set_result(e))
        time.sleep(0.1)                      # more work in the same iteration
        handed.append(time.monotonic())
        assert await asyncio.wait_for(asyncio.gather(*done), 10) == [None] * 5

    loop.run_until_complete(one_iteration_then_wait())
    assert len(started) == 5 and min(started) >= handed[0]
    pool.shutdown()
