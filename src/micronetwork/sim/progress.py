"""Progress with an estimate of the time left, for runs that take minutes.

Theory of operation. A scenario reports ``(fraction_done, label)`` through a callable; this
module turns that into a rich progress bar when ``rich`` is installed and stderr is a terminal,
else a plain line at most every few seconds (``label 42% elapsed 1:05 left ~1:30``). The
estimate is linear in the fraction done, which is how the scenarios measure it (virtual time or
nodes joined), so it is rough at the start and good by the middle.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

__all__ = ["ProgressReporter"]


def _fmt(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProgressReporter:
    """``with ProgressReporter("run") as p: p(0.5, "lookups")``; silent with ``enabled=False``."""

    def __init__(self, title: str, enabled: bool = True, interval: float = 5.0) -> None:
        self.title = title
        self.enabled = enabled
        self.interval = interval
        self._t0 = time.monotonic()
        self._last = 0.0
        self._rich: Any = None
        self._task: Any = None
        self._stage = ""
        self._stage_t0 = self._t0

    def __enter__(self) -> ProgressReporter:
        if self.enabled and sys.stderr.isatty():
            try:
                from rich.progress import (
                    BarColumn,
                    Progress,
                    TextColumn,
                    TimeElapsedColumn,
                    TimeRemainingColumn,
                )
            except ImportError:
                pass
            else:
                self._rich = Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    TextColumn("{task.percentage:>3.0f}%"),
                    TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(), transient=True,
                )
                self._rich.start()
                self._task = self._rich.add_task(self.title, total=1.0)
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._rich is not None:
            self._rich.stop()

    def __call__(self, frac: float, label: str) -> None:
        if not self.enabled:
            return
        if label != self._stage:
            self._stage, self._stage_t0 = label, time.monotonic()
            if self._rich is not None:
                self._rich.reset(self._task, total=1.0, description=f"{self.title}: {label}")
        frac = min(max(frac, 0.0), 1.0)
        if self._rich is not None:
            self._rich.update(self._task, completed=frac)
            return
        now = time.monotonic()
        if now - self._last < self.interval and frac < 1.0:
            return
        self._last = now
        spent = now - self._stage_t0
        left = spent * (1 - frac) / frac if frac > 0 else float("nan")
        eta = _fmt(left) if left == left else "?"
        print(f"{self.title}: {label} {frac:4.0%} elapsed {_fmt(now - self._t0)} "
              f"stage left ~{eta}", file=sys.stderr, flush=True)
