"""A progress line on stderr for long computations (the library reports, the CLI draws)."""

from __future__ import annotations

import sys
import time

from .._progress import Progress


class ProgressLine:
    """Callable given to the library as `progress`; draws one line on stderr once the run has
    taken longer than `delay` seconds: a live line on a terminal, otherwise a plain line every
    `every` seconds (so logs of batch jobs show it too). Off when `enabled` is false."""

    def __init__(self, label: str, *, enabled: bool = True, delay: float = 2.0, every: float = 5.0):
        from rich.console import Console

        self.label, self.enabled, self.delay, self.every = label, enabled, delay, every
        self.console = Console(file=sys.stderr, highlight=False)
        self.live = None
        self._last_plain = -float("inf")

    def __call__(self, p: Progress) -> None:
        if not self.enabled or p.elapsed < self.delay:
            return
        t = "" if p.t is None else f"  t = {p.t:.3g}"
        text = (f"{self.label}: {p.elapsed:6.1f} s  {p.stage} step {p.steps}{t}  loss {p.loss:.8g}  "
                f"‖∇L‖∞ {p.grad_norm_inf:.2e}")
        if self.console.is_terminal:
            if self.live is None:
                from rich.live import Live

                self.live = Live(console=self.console, transient=True, auto_refresh=False)
                self.live.start()
            self.live.update(text, refresh=True)
        elif time.perf_counter() - self._last_plain >= self.every:
            self._last_plain = time.perf_counter()
            self.console.print(text, markup=False)

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
