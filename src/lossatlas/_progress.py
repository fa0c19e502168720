"""Time budgets and progress reports shared by the flows, the solvers and the pipeline.

A long computation takes an optional `max_time` (seconds) and an optional `progress` callable.
Both are plain values passed down explicitly; nothing here is global state. The callable
receives a :class:`Progress` record, at most every `Budget.interval` seconds, from whichever
stage is running (``"flow"``, ``"newton"``, ...).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

from ._errors import InputError


@dataclasses.dataclass(frozen=True)
class Progress:
    """One progress report: the stage, seconds since the start, steps taken in this stage,
    and the current loss and ``||∇L||_∞`` (``t`` is the flow time for ``stage == "flow"``)."""

    stage: str
    elapsed: float
    steps: int
    loss: float
    grad_norm_inf: float
    t: float | None = None


ProgressFn = Callable[[Progress], None]


class Budget:
    """A wall-clock deadline and a throttled progress callback, started at construction.

    `max_time` ``None`` means no deadline. :meth:`report` forwards at most one report per
    `interval` seconds (the first one immediately), so stages can call it every step.
    """

    def __init__(self, max_time: float | None = None, progress: ProgressFn | None = None,
                 *, interval: float = 0.5, start: float | None = None):
        if max_time is not None:
            max_time = float(max_time)
            if not (max_time > 0 and math.isfinite(max_time)):
                raise InputError(f"`max_time` must be a positive number of seconds, got {max_time}.")
        if progress is not None and not callable(progress):
            raise InputError(f"`progress` must be callable (it receives a lossatlas Progress), got {progress!r}.")
        self.start = time.perf_counter() if start is None else float(start)
        self.deadline = None if max_time is None else self.start + max_time
        self.max_time = max_time
        self.progress = progress
        self.interval = float(interval)
        self._last = -math.inf

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def remaining(self) -> float | None:
        """Seconds left (never negative), or ``None`` without a deadline."""
        return None if self.deadline is None else max(0.0, self.deadline - time.perf_counter())

    def expired(self) -> bool:
        return self.deadline is not None and time.perf_counter() >= self.deadline

    def part(self, fraction: float) -> Budget:
        """A budget sharing this one's start and progress callback whose deadline comes after
        `fraction` of this one's `max_time` (never later than this one's); unlimited stays unlimited."""
        sub = Budget(None, self.progress, interval=self.interval, start=self.start)
        if self.max_time is not None:
            sub.max_time = self.max_time * float(fraction)
            sub.deadline = min(self.deadline, self.start + sub.max_time)
        sub._last = self._last
        return sub

    def report(self, stage: str, steps: int, loss: float, grad_norm_inf: float, t: float | None = None,
               *, force: bool = False) -> None:
        if self.progress is None:
            return
        now = time.perf_counter()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        self.progress(Progress(stage, now - self.start, int(steps), float(loss), float(grad_norm_inf),
                               None if t is None else float(t)))


def as_budget(budget: Budget | None) -> Budget:
    """The given budget, or an unlimited one without progress reports."""
    return Budget() if budget is None else budget
