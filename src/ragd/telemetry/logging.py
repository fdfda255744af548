"""structlog configuration: console for people, JSON for machines, secrets never.

Request ids live in contextvars, so every line logged while serving a request carries it,
including lines from services and the store.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO, cast

import structlog

_SECRET_KEYS = re.compile(r"(authorization|api[_-]?key|password|secret|token)", re.I)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s:]+(:[^/@\s]*)?@", re.I)


def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask secret-looking fields and credentials embedded in URLs."""
    for key, value in list(event.items()):
        if _SECRET_KEYS.search(key) and key != "event":
            event[key] = "[redacted]"
        elif isinstance(value, str) and "@" in value:
            event[key] = _URL_CREDENTIALS.sub(r"\g<scheme>[redacted]@", value)
    return event


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time of the write, not at set-up: a
    CLI command run inside another process (the test runner) gets a stderr that is
    swapped and closed after it, and later log lines must not go to the closed one."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "INFO", fmt: str = "auto") -> None:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info if use_json else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(cast(TextIO, _CurrentStderr())),
        cache_logger_on_first_use=False,
    )
    # Libraries log through the standard library; send it to the same stream and level.
    logging.basicConfig(level=level, stream=sys.stderr, format="%(name)s: %(message)s")
    for noisy in ("uvicorn.access", "httpx", "sentence_transformers", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
