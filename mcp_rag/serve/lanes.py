"""Where the server runs blocking work, so that expensive calls cannot starve cheap ones.

Model work (embedding, the cross-encoder, indexing) runs on a lane of its own: a fixed
number of worker threads behind a bounded queue. Past the queue's depth a call is refused
at once with a "busy, retry in N s" message instead of waiting behind the whole backlog.
Cheap work (status, resource reads, cache hits) and the transport's own I/O use anyio's
default thread limiter, which model work never borrows from, so they answer while the
model lane is full.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from collections.abc import Callable
from typing import TypeVar

import anyio

from mcp_rag.errors import BusyError

T = TypeVar("T")


class Lane:
    """``workers`` threads behind a queue of at most ``max_waiting`` calls.

    Example:
        lane = Lane("model", workers=2, max_waiting=32)
        result = await lane.run(lambda: pipeline.search("refund"))
    """

    def __init__(self, name: str, workers: int, max_waiting: int) -> None:
        if workers < 1 or max_waiting < 0:
            raise ValueError(f"a lane needs at least 1 worker and 0+ waiting calls, not "
                             f"{workers} and {max_waiting}")
        self.name = name
        self.workers = workers
        self.max_waiting = max_waiting
        self.limiter = anyio.CapacityLimiter(workers)
        self.in_flight = 0  # running + waiting
        self._seconds: deque[float] = deque(maxlen=50)  # recent call durations

    @property
    def waiting(self) -> int:
        return max(0, self.in_flight - self.workers)

    def retry_after(self) -> int:
        """Seconds until a call queued now would likely start: the queue over the workers."""
        typical = statistics.median(self._seconds) if self._seconds else 1.0
        return max(1, math.ceil((self.waiting + 1) * typical / self.workers))

    async def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` in a worker thread of this lane; BusyError when the queue is full."""
        if self.in_flight >= self.workers + self.max_waiting:
            raise BusyError(
                f"the server is busy: {self.waiting} {self.name} calls are queued (the limit "
                f"is {self.max_waiting}); retry in about {self.retry_after()} s"
            )
        self.in_flight += 1

        def timed() -> T:
            started = time.perf_counter()
            try:
                return fn()
            finally:
                self._seconds.append(time.perf_counter() - started)

        try:
            # Waiting for a token of the lane's own limiter takes no thread, and a thread
            # here takes no token of the default limiter, which stays free for cheap calls
            # and the transport.
            return await anyio.to_thread.run_sync(timed, limiter=self.limiter)
        finally:
            self.in_flight -= 1
