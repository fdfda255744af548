"""One model call at a time, and a waiting query always goes before the next document slice.

On CPU the model takes every core while it encodes, so calls are serialized anyway; with
a plain lock a search query queued behind the worker's 256-text call (seconds to tens of
seconds on a loaded machine), and under 20 search clients and one uploader search p50
went from 4.4 s to 19.9 s. Here document embedding is cut into slices that each take the
gate as *background* work: it waits while a query (*foreground*) is waiting, and while
queries keep arriving its slices shrink, so a query waits at most one small slice.
Ingestion is never starved outright: a background slice that has waited
``max_wait_s`` takes the next turn, before any query that is waiting then.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["PriorityGate"]


class PriorityGate:
    """A lock with two classes of callers; foreground first."""

    def __init__(self, *, max_wait_s: float = 2.0, busy_window_s: float = 2.0) -> None:
        self.max_wait_s = max_wait_s
        self.busy_window_s = busy_window_s
        self._cond = threading.Condition()
        self._held = False
        self._foreground_waiting = 0
        self._overdue = 0  # background callers past max_wait_s: served next
        self._last_foreground = -float("inf")

    @contextmanager
    def foreground(self) -> Iterator[None]:
        with self._cond:
            self._foreground_waiting += 1
            try:
                while self._held or self._overdue:
                    self._cond.wait()
            finally:
                self._foreground_waiting -= 1
            self._held = True
            self._last_foreground = time.monotonic()
        try:
            yield
        finally:
            self._release()

    @contextmanager
    def background(self) -> Iterator[None]:
        deadline = time.monotonic() + self.max_wait_s
        overdue = False
        with self._cond:
            while self._held or (self._foreground_waiting and not overdue):
                self._cond.wait(max(deadline - time.monotonic(), 0.01))
                if not overdue and time.monotonic() >= deadline:
                    overdue = True  # from now on, queries wait for this slice
                    self._overdue += 1
            if overdue:
                self._overdue -= 1
            self._held = True
        try:
            yield
        finally:
            self._release()

    def foreground_active(self) -> bool:
        """Whether foreground callers came recently: background work should stay small."""
        with self._cond:
            recent = time.monotonic() - self._last_foreground < self.busy_window_s
            return self._foreground_waiting > 0 or recent

    def _release(self) -> None:
        with self._cond:
            self._held = False
            self._cond.notify_all()
