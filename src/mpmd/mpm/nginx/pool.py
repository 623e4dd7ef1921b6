"""BlockingPool: the threads beside a worker's loop that run blocking handlers (WSGI apps).

Theory: the loop hands a request's handler to ``call(fn, args, then)``; a pool thread runs it
and puts ``(then, result, error)`` on a done queue; ``then`` runs on the loop.  Both directions
go in batches, because every thread switch is a GIL hand-off:
  * the calls made during one loop iteration are queued together at its end (one
    ``call_soon``), so no pool thread wakes up to wait for the GIL the loop still holds;
  * the loop is woken (``call_soon_threadsafe``) only by the first result since it last looked,
    and takes every result that finished meanwhile in one callback.
No Task, asyncio Future or ``concurrent.futures.Future`` (with its lock and condition) is made
per request.

Rule 1: at most ``size`` jobs run at once; more wait in FIFO order.  A thread is started only
        when none is idle (as ``ThreadPoolExecutor`` does), so a quiet process keeps few threads.
Rule 2: a ``call`` waits at most for the rest of the current loop iteration before a thread
        may take it (the loop does not sleep while callbacks are ready).
Rule 3: ``then(result, error)`` is called on the loop exactly once per ``call``: ``error`` is
        what ``fn`` raised (else None).
Rule 4: it is also a ``concurrent.futures.Executor`` (``submit``, queued at once), so
        ``loop.run_in_executor`` and fire-and-forget work (writer.py: pulling a WSGI iterable,
        calling close()) share the same threads and the same bound.
"""

from __future__ import annotations

import concurrent.futures
import functools
import queue
import threading
from collections import deque
from typing import Any, Callable

Then = Callable[[Any, "BaseException | None"], None]


class BlockingPool(concurrent.futures.Executor):
    def __init__(self, loop: Any, size: int, name: str = "mpmd-blocking") -> None:
        self.loop = loop
        self.size = size
        self.name = name
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.done: deque[tuple[Then, Any, BaseException | None]] = deque()
        self.threads: list[threading.Thread] = []
        self.idle = threading.Semaphore(0)
        self.wake_due = False          # a _drain is scheduled and has not started yet
        self.held: list[Any] = []      # calls of this loop iteration, not queued yet (Rule 2)
        self.closed = False

    # -- the loop side ------------------------------------------------------------------------
    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], then: Then) -> None:
        """Run ``fn(*args)`` in a pool thread; ``then(result, error)`` later on the loop."""
        held = self.held
        held.append((fn, args, then))
        if len(held) == 1:
            self.loop.call_soon(self._release_held)

    def _release_held(self) -> None:
        held, self.held = self.held, []
        if self.closed:                # the process is exiting: nobody waits for these
            return
        for job in held:
            self._put(job)

    def submit(self, fn: Callable[..., Any], /, *args: Any,
               **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        if kwargs:
            fn, args = functools.partial(fn, *args, **kwargs), ()
        self._put((fn, args, future))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        if cancel_futures:
            while True:
                try:
                    job = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None and isinstance(job[2], concurrent.futures.Future):
                    job[2].cancel()
        for _ in self.threads:
            self.jobs.put(None)
        if wait:
            for th in self.threads:
                th.join()

    def _put(self, job: Any) -> None:
        if self.closed:
            raise RuntimeError("cannot schedule new work after shutdown")
        if not self.idle.acquire(timeout=0) and len(self.threads) < self.size:
            th = threading.Thread(target=self._work, name=f"{self.name}-{len(self.threads)}",
                                  daemon=True)
            self.threads.append(th)
            th.start()
        self.jobs.put(job)

    def _drain(self) -> None:
        self.wake_due = False          # first: a result added from now on schedules a new drain
        done = self.done
        while done:
            then, result, error = done.popleft()
            then(result, error)

    # -- the pool threads ---------------------------------------------------------------------
    def _work(self) -> None:
        jobs, done = self.jobs, self.done
        while True:
            job = jobs.get()
            if job is None:
                return
            fn, args, then = job
            if isinstance(then, concurrent.futures.Future):
                if then.set_running_or_notify_cancel():
                    try:
                        then.set_result(fn(*args))
                    except BaseException as exc:  # noqa: BLE001 - handed to the waiter
                        then.set_exception(exc)
            else:
                try:
                    result, error = fn(*args), None
                except BaseException as exc:  # noqa: BLE001 - Rule 3: handed to the loop
                    result, error = None, exc
                done.append((then, result, error))
                if not self.wake_due:
                    self.wake_due = True
                    try:
                        self.loop.call_soon_threadsafe(self._drain)
                    except RuntimeError:       # the loop is closed: the process is exiting
                        return
            del job, fn, args, then
            self.idle.release()
