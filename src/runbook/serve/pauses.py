"""Python's full garbage collections held off while deliveries are being taken.

A full collection walks every object the process holds, holding the GIL meanwhile: with a
thousand live status-page viewers and a storm's incidents open that is 300,000 objects and 60 to
270 ms, during which every delivery in flight waits (benchmarks/flood.py). Python starts one when
the objects it holds have grown by a quarter, which is what a storm and a crowd of viewers do.
While deliveries are being taken, automatic collection is off; it is back on once none has been
in flight for QUIET seconds, when the collection it owes runs with nobody waiting for an answer.
It is never off longer than LONGEST at a stretch (a flood that never pauses): then one collection
runs. What is garbage meanwhile is freed by reference counting as usual; only cycles wait.
"""

from __future__ import annotations

import asyncio
import gc
from contextlib import contextmanager


class CollectionsHeldOff:
    """Used on the server's event loop only (one per process: gc is process-wide)."""

    QUIET = 0.5
    LONGEST = 10.0

    def __init__(self):
        self.taking = 0
        self.since: float | None = None  # when collection was turned off (the loop's clock)
        self._resume: asyncio.TimerHandle | None = None
        self.held = 0  # times collection was held off (for the tests and the curious)

    @contextmanager
    def taking_delivery(self):
        loop = asyncio.get_running_loop()
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        if self.since is None:
            if gc.isenabled():  # turned off by someone else: not ours to turn back on
                gc.disable()
                self.since = loop.time()
                self.held += 1
        elif loop.time() - self.since >= self.LONGEST:
            gc.collect()  # held off long enough: the one pause of a flood that never ends
            self.since = loop.time()
        self.taking += 1
        try:
            yield
        finally:
            self.taking -= 1
            if self.taking == 0 and self.since is not None:
                self._resume = loop.call_later(self.QUIET, self._turn_back_on)

    def _turn_back_on(self) -> None:
        self._resume = None
        if self.taking == 0 and self.since is not None:
            self.since = None
            gc.enable()

    def close(self) -> None:
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        if self.since is not None:
            self.since = None
            gc.enable()
