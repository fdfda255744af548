"""The audit log's vocabulary: who acts (the context), what an event is, how it is hashed.

Shared by the store (which appends events inside the transaction of each change), the
services (which list and verify them) and the transports (which say who is acting), so
the one definition of the canonical encoding lives here and nowhere else.

**Who acts.** :data:`AUDIT_CONTEXT` is a context variable: the API sets it per request
(the key prefix, or ``anonymous``; the request id; the client address), and everything
else (the CLI, ``ragd worker``, the in-process worker's thread) runs under the default,
``local``. The store reads it when it appends, so no store method takes an actor
argument and the store never imports the API.

**Canonical encoding** (docs/audit.md says the same for auditors). An event's hash is the
lowercase hex SHA-256 of the UTF-8 bytes of one JSON object with exactly the keys
``action, actor, at, client, detail, prev_hash, request_id, seq, target``, sorted, no
whitespace (``separators=(",", ":")``), non-ASCII characters written as themselves:

- ``seq``: integer; ``at``: ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC, always six digits);
- ``actor``, ``action``: strings; ``client``, ``request_id``: string or null;
- ``target``: a list of id strings; ``detail``: an object of strings, integers, booleans,
  nulls, lists and objects (never a float, whose text differs between encoders);
- ``prev_hash``: the previous event's ``hash``, 64 zeros for the first event.

A checkpoint signs, with Ed25519, the same encoding of
``{"at", "hash", "key_id", "seq", "type": "ragd.audit.checkpoint"}``.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

GENESIS_HASH = "0" * 64
CHECKPOINT_TYPE = "ragd.audit.checkpoint"
LOCAL = "local"
ANONYMOUS = "anonymous"
# Bounds on what one event may carry: the detail is "small JSON", never a document.
MAX_DETAIL_BYTES = 4096
MAX_TARGETS = 16

# Background jobs: every change of a job's state is the event ``f"{kind}.{step}"``
# (``export.submit``, ``reindex.finish``...), so a kind added later is audited as the
# others are (docs/audit.md, "Background jobs").
JOB_STEPS = ("submit", "start", "requeue", "cancel_request", "cancel", "finish", "fail")
# The prefixes of the store's own actions: a job kind may not be one of them, or its
# events could be mistaken for theirs (a kind ``ingestion`` would write ``ingestion.fail``).
RESERVED_ACTION_PREFIXES = frozenset(
    {
        "audit",
        "auth",
        "chat_session",
        "collection",
        "document",
        "ingestion",
        "key",
        "keyword_index",
        "source",
    }
)
# How many integer counts of a job's result its ``finish`` event carries.
MAX_RESULT_COUNTS = 16


@dataclass(frozen=True)
class AuditContext:
    """Who is acting now: stamped on every event appended in this context."""

    actor: str = LOCAL
    request_id: str | None = None
    client: str | None = None


# The default is frozen, so sharing it between contexts is safe.
AUDIT_CONTEXT: contextvars.ContextVar[AuditContext] = contextvars.ContextVar(
    "ragd_audit_context",
    default=AuditContext(),  # noqa: B039
)


def current_context() -> AuditContext:
    return AUDIT_CONTEXT.get()


def bind_actor(actor: str) -> None:
    """Name the actor of the current context (the API, once the key is known)."""
    AUDIT_CONTEXT.set(replace(AUDIT_CONTEXT.get(), actor=actor))


@contextmanager
def acting_as(context: AuditContext) -> Iterator[None]:
    """``context`` for the duration of a block (a request, a test)."""
    token = AUDIT_CONTEXT.set(context)
    try:
        yield
    finally:
        AUDIT_CONTEXT.reset(token)


@dataclass(frozen=True)
class AuditEntry:
    """What a change records: the action, the ids it touched, a small detail."""

    action: str
    target: tuple[str, ...] = ()
    detail: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class AuditEvent:
    """One stored event, as hashed (``target`` and ``detail`` decoded)."""

    seq: int
    at: dt.datetime
    actor: str
    action: str
    target: tuple[str, ...]
    request_id: str | None
    client: str | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class AuditCheckpoint:
    """A signature over the chain's ``(seq, hash)`` at one point."""

    seq: int
    hash: str
    signature: str
    key_id: str
    at: dt.datetime


@dataclass(frozen=True)
class AuditFilters:
    """Which events a listing shows: every given field must match (``target``: one of
    the event's ids; ``since`` inclusive, ``until`` exclusive)."""

    action: str | None = None
    actor: str | None = None
    target: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


@dataclass(frozen=True)
class AuditPruned:
    """What a prune did: the checkpoint that anchors what remains, events deleted."""

    anchor_seq: int | None
    deleted: int


def job_action(kind: str, step: str) -> str:
    """The action of one step of a job of ``kind``: ``f"{kind}.{step}"``."""
    if step not in JOB_STEPS:
        raise ValueError(f"unknown job step {step!r}")
    return f"{kind}.{step}"


def result_counts(result: Mapping[str, Any]) -> dict[str, int | bool]:
    """The integer and boolean values at the top of a job's result: what its ``finish``
    event records (counts, never text: a result may name files or quote documents)."""
    counts: dict[str, int | bool] = {}
    for name in sorted(result):
        value = result[name]
        if isinstance(value, int) and len(name) <= 64:
            counts[name] = value
            if len(counts) == MAX_RESULT_COUNTS:
                break
    return counts


def format_at(at: dt.datetime) -> str:
    """The fixed-precision UTC text of a timestamp, as hashed."""
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> bytes:
    """The canonical encoding (see the module doc); floats are refused."""
    _refuse_floats(value)
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _refuse_floats(value: Any) -> None:
    if isinstance(value, float):
        raise ValueError("audit details hold no floats (their text is not canonical)")
    if isinstance(value, Mapping):
        for item in value.values():
            _refuse_floats(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_floats(item)


def event_hash(
    *,
    seq: int,
    at: dt.datetime,
    actor: str,
    action: str,
    target: Sequence[str],
    request_id: str | None,
    client: str | None,
    detail: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """The hash of one event chained to ``prev_hash``."""
    encoded = canonical_json(
        {
            "action": action,
            "actor": actor,
            "at": format_at(at),
            "client": client,
            "detail": detail,
            "prev_hash": prev_hash,
            "request_id": request_id,
            "seq": seq,
            "target": list(target),
        }
    )
    return hashlib.sha256(encoded).hexdigest()


def hash_of(event: AuditEvent, *, seq: int | None = None) -> str:
    """``event``'s hash recomputed from its fields (as if at ``seq``, when given)."""
    return event_hash(
        seq=event.seq if seq is None else seq,
        at=event.at,
        actor=event.actor,
        action=event.action,
        target=event.target,
        request_id=event.request_id,
        client=event.client,
        detail=event.detail,
        prev_hash=event.prev_hash,
    )


def checkpoint_message(*, seq: int, hash: str, key_id: str, at: dt.datetime) -> bytes:
    """The bytes a checkpoint's signature covers."""
    return canonical_json(
        {"at": format_at(at), "hash": hash, "key_id": key_id, "seq": seq, "type": CHECKPOINT_TYPE}
    )


__all__ = [
    "ANONYMOUS",
    "AUDIT_CONTEXT",
    "GENESIS_HASH",
    "JOB_STEPS",
    "LOCAL",
    "MAX_RESULT_COUNTS",
    "RESERVED_ACTION_PREFIXES",
    "AuditCheckpoint",
    "AuditContext",
    "AuditEntry",
    "AuditEvent",
    "AuditFilters",
    "AuditPruned",
    "acting_as",
    "bind_actor",
    "canonical_json",
    "checkpoint_message",
    "current_context",
    "event_hash",
    "format_at",
    "hash_of",
    "job_action",
    "result_counts",
]
