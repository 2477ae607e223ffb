"""Requests that arrive together are matched together. A match's cost is mostly fixed
(standardising, building a small population, one comparison and scoring call), so one
thread that takes every request waiting and answers them in one ``match_many`` serves a
burst for little more than the price of one, with the same answers as one by one.

Under light load a request is matched on its own as soon as it arrives: nothing waits to
fill a batch."""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

Query = TypeVar("Query")
Answer = TypeVar("Answer")


class Batcher(Generic[Query, Answer]):
    """``submit(query)`` gives a future of its answer. Each of ``answerers`` (a function that
    answers a batch of at most ``max_batch`` queries, in order) has a thread of its own that
    takes what is waiting whenever it is free; with one answerer, batches are answered one
    after the other, so it needs no lock against itself."""

    def __init__(self, answer_all: Callable[[list[Query]], list[Answer]] | Sequence[Callable[[list[Query]], list[Answer]]],
                 max_batch: int = 64, name: str = "batcher"):
        answerers = [answer_all] if callable(answer_all) else list(answer_all)
        if not answerers:
            raise ValueError("a batcher needs at least one answerer")
        self.max_batch = max_batch
        self._waiting: list[tuple[Query, Future[Answer]]] = []
        self._ready = threading.Condition()
        self._stopped = False
        self.batches = 0
        self.answered = 0
        self._threads = [threading.Thread(target=self._run, args=(answer,), name=f"{name}-{i}", daemon=True)
                         for i, answer in enumerate(answerers)]
        for thread in self._threads:
            thread.start()

    def submit(self, query: Query) -> Future[Answer]:
        future: Future[Answer] = Future()
        with self._ready:
            if self._stopped:
                raise RuntimeError("the server is stopping")
            self._waiting.append((query, future))
            self._ready.notify()
        return future

    def _run(self, answer_all: Callable[[list[Query]], list[Answer]]) -> None:
        while True:
            with self._ready:
                while not self._waiting and not self._stopped:
                    self._ready.wait()
                if self._stopped and not self._waiting:
                    return
                batch, self._waiting = self._waiting[:self.max_batch], self._waiting[self.max_batch:]
            batch = [(query, future) for query, future in batch if future.set_running_or_notify_cancel()]
            if not batch:
                continue
            try:
                answers = answer_all([query for query, _ in batch])
            except BaseException as error:  # every request of the batch hears of it, the thread goes on
                for _, future in batch:
                    future.set_exception(error)
                continue
            with self._ready:
                self.batches += 1
                self.answered += len(batch)
            for (_, future), answer in zip(batch, answers):
                future.set_result(answer)

    def stop(self) -> None:
        """Answers what is waiting, then ends the threads."""
        with self._ready:
            self._stopped = True
            self._ready.notify_all()
        for thread in self._threads:
            thread.join(timeout=60)
