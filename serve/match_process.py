"""``POST /v1/match`` on processes of its own, so that matching and the HTTP work around it
run on several cores instead of taking turns under one GIL.

Each process is a fork of the server once it has loaded: it starts with the loaded state
in memory pages it shares with the server (``gc.freeze`` beforehand keeps the collector
from writing to them). From then on the server's matcher tells it every change (``add``,
``reassign``, ``forget``, through ``RecordMatcher.change_listeners``) down the pipe its
queries take, so the copy replays them in the order they happened: a query sent after a
write was acknowledged is matched with that write in place. Writes themselves stay on the
server, which decides ids and keeps the record log.

Where a process is gone (killed, or it failed on a change), matching goes back to the
server's own matcher, which is always current: slower, never wrong."""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection

from identigraph.resolution.matching import MatchQuery, MatchResult, RecordMatcher

log = logging.getLogger(__name__)


def fork_is_available() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def _serve_matches(matcher: RecordMatcher, pipe: Connection, servers_ends: list[Connection],
                   core: int | None) -> None:
    """The forked process: changes and queries, in order, until the server closes the pipe."""
    if core is not None:
        os.sched_setaffinity(0, {core})
    for end in servers_ends:  # the server's ends of this pipe and its siblings', which came with the fork:
        end.close()  # held here, a pipe would stay open after the server died, and never end
    matcher.change_listeners.clear()  # the server's listener came with the fork
    # Ctrl-C reaches the whole process group: the server finishes the requests in flight, then
    # closes the pipe, which ends this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    matcher.build_value_codes()  # its own, before the first query (RecordMatcher.build_value_codes)
    while True:
        try:
            kind, payload = pipe.recv()
        except (EOFError, OSError):
            return
        if kind == "match":
            try:
                answer: tuple[bool, object] = (True, matcher.match_many(payload))
            except Exception as error:  # the query's failure, told to the server that asked
                answer = (False, f"{type(error).__name__}: {error}")
            pipe.send(answer)
        else:
            # A change the server made: if it fails here the copy is no longer the server's,
            # so the process ends and the server matches on its own.
            getattr(matcher, kind)(*payload)


def start_match_processes(matcher: RecordMatcher, count: int) -> list[MatchProcess]:
    """``count`` forked copies of ``matcher`` (none where the platform cannot fork). Where
    they are as many as the cores the server may use, or more, each is kept on one core:
    on 2 cores, left to move, they were slower (p99 at 1M, 6 connections: 18.5-21.9 ms
    against 16.8-18.7 ms pinned, six 20 s runs each); with cores to spare the kernel
    places them."""
    processes: list[MatchProcess] = []
    if not fork_is_available():
        return processes
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pin = 1 < len(cores) <= count
    for i in range(count):
        processes.append(MatchProcess(matcher, processes, cores[i % len(cores)] if pin else None))
    return processes


class MatchProcess:
    """``match_many`` answered by a forked copy of ``matcher``: ``send`` a burst, then
    ``receive`` its answers. A burst lands after every change sent before it; to keep a
    burst of writes whole, send under the lock the writes hold (the served state's)."""

    def __init__(self, matcher: RecordMatcher, siblings: Sequence[MatchProcess] = (), core: int | None = None):
        """``siblings``: the match processes forked before this one, whose pipes it closes;
        ``core``: the one core it runs on (None: wherever the kernel puts it)."""
        context = multiprocessing.get_context("fork")
        servers_end, process_end = context.Pipe()
        self._pipe = servers_end
        self._sending = threading.Lock()
        self._process = context.Process(target=_serve_matches, name="identigraph-match", daemon=True,
                                        args=(matcher, process_end, [servers_end, *(s._pipe for s in siblings)],
                                              core))
        self._process.start()
        process_end.close()
        self.failed: str | None = None
        matcher.change_listeners.append(self._forward)

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def alive(self) -> bool:
        return self.failed is None and self._process.is_alive()

    def _lost(self, error: BaseException) -> None:
        if self.failed is None:
            self.failed = f"{type(error).__name__}: {error}"
            log.warning("the match process (pid %s) is gone (%s): matching goes on in the server",
                        self.pid, self.failed)

    def _forward(self, method: str, arguments: tuple) -> None:
        if self.failed is not None:
            return
        try:
            with self._sending:
                self._pipe.send((method, arguments))
        except (OSError, ValueError) as error:  # never fail a write for it: the server's matcher has it
            self._lost(error)

    def send(self, queries: list[MatchQuery]) -> bool:
        """Sends a burst of queries, after every change made so far (False: the process is gone)."""
        if self.failed is not None:
            return False
        try:
            with self._sending:
                self._pipe.send(("match", queries))
            return True
        except (OSError, ValueError) as error:
            self._lost(error)
            return False

    def receive(self) -> list[MatchResult] | None:
        """The answers to the burst sent last (None: the process died before answering)."""
        try:
            ok, answer = self._pipe.recv()
        except (EOFError, OSError) as error:
            self._lost(error)
            return None
        if not ok:
            raise RuntimeError(f"matching failed: {answer}")
        return answer

    def stop(self) -> None:
        """Closes the pipe, which ends the process once it has answered what it holds."""
        self.failed = self.failed or "stopped"
        with self._sending:
            self._pipe.close()
        self._process.join(timeout=10)
        if self._process.is_alive():
            os.kill(self._process.pid or 0, signal.SIGKILL)
            self._process.join(timeout=10)
