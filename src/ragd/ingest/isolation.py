"""Run a parse in a child process that can be killed: the only bound a parser cannot dodge.

pypdf, lxml and trafilatura are pure Python or C extensions that never look at a clock:
a 385 KB PDF of 2,000 pages sharing one content stream keeps one busy for ~40 minutes,
and nothing inside the thread can stop it. So each parse runs in its own process, with a
deadline, a cap on the memory it may add (a 2 MiB page of one repeated tag took ~1 GB) and a
``cancelled`` check the parent polls (the document was deleted, or its lease lost); any of
them kills the child and frees the worker for the next document.

The processes come from a ``forkserver`` that has imported the parsers once: forking that
small, single-threaded server costs milliseconds, where ``spawn`` would re-import pypdf
and trafilatura for every document, and ``fork`` would copy an API process full of threads
(and a loaded model) into a child that may deadlock on a lock some other thread held.
"""

from __future__ import annotations

import multiprocessing
import resource
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from ragd import errors
from ragd.errors import ParseError, RagdError
from ragd.ingest.parsers import HEAVY_PARSER_MODULES
from ragd.ingest.parsers.base import short_reason

__all__ = ["Cancelled", "run_isolated"]

T = TypeVar("T")
A = TypeVar("A")

_POLL_S = 0.25
# Imported once by the fork server, so children start with them loaded. ``__main__``
# too: otherwise each child re-runs the main script (``ragd``'s entry point) on start.
_PRELOAD = ["__main__", "ragd.ingest.pipeline", *HEAVY_PARSER_MODULES]
_context_lock = threading.Lock()
_context: Any = None


class Cancelled(Exception):
    """The caller's ``cancelled`` check said stop; the child was killed."""


def run_isolated(
    func: Callable[[A], T],
    arg: A,
    *,
    timeout_s: float,
    max_memory_mb: int | None = None,
    cancelled: Callable[[], bool] = lambda: False,
    poll_s: float = _POLL_S,
) -> T:
    """``func(arg)`` in a child process, killed after ``timeout_s`` or when ``cancelled()``.

    ``func`` must be a module-level function and ``arg`` and the result picklable. A
    RagdError raised in the child is raised here with the same class and detail; any
    other failure, a crash or running out of the memory cap becomes a ParseError, a
    deadline a ParseError naming it, and ``cancelled()`` turning true :class:`Cancelled`.
    ``cancelled`` is called about every ``poll_s`` seconds, in this thread.
    """
    ctx = _forkserver()
    receiver, sender = ctx.Pipe(duplex=False)
    limit = max_memory_mb * 1024 * 1024 if max_memory_mb else None
    process = ctx.Process(target=_child, args=(sender, func, arg, limit), daemon=True)
    process.start()
    sender.close()
    try:
        outcome = _wait(process, receiver, timeout_s, cancelled, poll_s)
    finally:
        receiver.close()
        if process.is_alive():
            process.kill()
        process.join()
    result: T = _unpack(outcome)
    return result


def _wait(
    process: Any,
    receiver: Connection,
    timeout_s: float,
    cancelled: Callable[[], bool],
    poll_s: float,
) -> tuple[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ParseError(f"parsing took longer than {timeout_s:g} s and was stopped")
        if receiver.poll(min(poll_s, remaining)):
            try:
                outcome: tuple[str, Any] = receiver.recv()
            except EOFError:
                process.join(1.0)
                raise ParseError(
                    f"the parser stopped unexpectedly (exit code {process.exitcode})"
                ) from None
            return outcome
        if cancelled():
            raise Cancelled


def _unpack(outcome: tuple[str, Any]) -> Any:
    kind, payload = outcome
    if kind == "ok":
        return payload
    if kind == "ragd":
        name, detail = payload
        cls = getattr(errors, name, None)
        if isinstance(cls, type) and issubclass(cls, RagdError):
            raise cls(detail)
        raise ParseError(detail)
    if kind == "memory":
        raise ParseError("parsing needed more memory than allowed and was stopped")
    raise ParseError(f"document could not be parsed: {payload}")


def _child(sender: Connection, func: Callable[[Any], Any], arg: Any, limit: int | None) -> None:
    """Runs in the child: apply the memory cap, call, send one outcome back."""
    if limit is not None:
        cap = _address_space() + limit  # what the parse may add to what is mapped already
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        outcome: tuple[str, Any] = ("ok", func(arg))
    except RagdError as exc:
        outcome = ("ragd", (type(exc).__name__, exc.detail))
    except MemoryError:
        outcome = ("memory", None)
    except Exception as exc:
        outcome = ("error", short_reason(exc))
    try:
        sender.send(outcome)
    except MemoryError:
        sender.send(("memory", None))
    sender.close()


def _address_space() -> int:
    """Bytes of address space mapped now (Linux ``/proc``; 0 elsewhere).

    The cap is added to this because what the fork server imported (more when the main
    script pulls in large libraries) is mapped before the parse allocates anything."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


def _forkserver() -> Any:
    """The shared forkserver context; the server itself starts on the first parse."""
    global _context
    with _context_lock:
        if _context is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(_PRELOAD)
            _context = ctx
        return _context
