"""worker: processes x threads, a thread per connection (httpd mpm_worker).

Theory: each child runs a listener (its main thread) and ThreadsPerChild worker threads.  The
listener waits for an idle worker first, then for a connection; it accepts one and hands it over
a queue.  The worker serves that connection to its end with the blocking ``ConnectionDriver``,
keep-alive waits included, and becomes idle again.  The master keeps the idle threads of all
children between MinSpareThreads and MaxSpareThreads (``threaded.ThreadedMPM``).

Rule 1: the listener accepts only while some worker is idle (a semaphore of idle workers), so a
        connection is never accepted into a child that cannot serve it: the others take it.
Rule 2: graceful (signal or pipe of death): stop accepting, let each worker finish its
        connection (no further keep-alive), then exit.
Rule 3: after MaxConnectionsPerChild accepted connections (0 = unlimited) the child goes graceful.
"""

from __future__ import annotations

import queue
import socket
import threading
from typing import Any

from mpmd.mpm.common import ignore_eintr_select
from mpmd.mpm.threaded import DIRECTIVES, ThreadedMPM
from mpmd.scoreboard.layout import Status

POLL_S = 1.0


class Worker(ThreadedMPM):
    name = "worker"
    DIRECTIVES = DIRECTIVES

    def serve_child(self, slot: int) -> None:
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.idle = threading.Semaphore(self.settings.threads_per_child)
        # each listener's TLS (mpm/conn.py Rule 6), handed to the worker with the socket
        self.tls_of = {lst.sock: lst.tls for lst in self.listeners if getattr(lst, "tls", None)}
        self.with_workers(self._worker_main, self._listen)

    # -- listener -----------------------------------------------------------------------------
    def _listen(self) -> None:
        """Accept while a worker is idle (Rule 1) until graceful (Rule 2, Rule 3)."""
        pod = None if self.runtime.single_process else self.pod
        fds: list[Any] = [lst.sock for lst in self.listeners] + [self.wake_r]
        if pod is not None:
            fds.append(pod.r)
        limit, accepted = self.max_conns_per_child, 0
        while not self.graceful:
            if not self.idle.acquire(timeout=POLL_S):
                continue
            took = False
            for ready in ignore_eintr_select(fds, POLL_S * 5):
                if ready == self.wake_r:
                    continue
                if pod is not None and ready == pod.r:
                    self.graceful = self.graceful or pod.check()
                    continue
                took = self._accept_one(ready)
                if took:
                    break
            if not took:
                self.idle.release()
                continue
            accepted += 1
            if limit and accepted >= limit:
                self.graceful = True

    def _accept_one(self, lsock: socket.socket) -> bool:
        try:
            sock, addr = lsock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return False
        except OSError:
            return False
        self.jobs.put((sock, addr, self.tls_of.get(lsock)))
        return True

    # -- workers --------------------------------------------------------------------------------
    def _worker_main(self, thread: int) -> None:
        driver = self.make_driver(thread)
        slot = driver.slot
        while True:
            slot.set_status(Status.READY)
            job = self.jobs.get()
            if job is None:
                return
            try:
                sock, addr, tls = job
                driver.serve_connection(sock, addr, tls=tls)
            finally:
                slot.set_status(Status.READY)
                self.idle.release()
