"""A Prometheus stand-in for the lease tests: every query answers call drops as fine."""

from __future__ import annotations


class Metrics:
    """Call drops as Prometheus would answer (fine); `during` runs inside the next query, once
    (a server stalled inside its query, another acting meanwhile)."""

    def __init__(self, clock):
        self.clock, self.asked, self.during = clock, [], None

    def query(self, promql, at=None, timeout=None):
        from runbook.metric_checks import Series

        self.asked.append(self.clock.now())
        during, self.during = self.during, None
        if during is not None:
            during()
        return [Series({}, 0.001)]
