"""Checking the audit chain: every hash, every link, every signed checkpoint.

:func:`verify_chain` walks one snapshot of the chain in seq order, with a lookahead of
:data:`LOOKAHEAD` events (memory stays bounded however long the chain is), and stops at
the first problem, named by the first bad seq and its kind:

- ``modified``: an event no longer matches its hash; or it was re-hashed so that the next
  event's link breaks; or the chain was re-hashed wholesale, which only a signed
  checkpoint reveals (then the first seq that may be bad is the one after the previous
  good checkpoint);
- ``deleted``: seq numbers are missing; or events were deleted and the rest renumbered
  (an event then hashes correctly only under a later seq);
- ``inserted``: an event that is not part of the chain (the next one links past it, or
  hashes correctly only under an earlier seq), or events past the recorded chain head;
- ``reordered``: an event sits at the seq of another that follows it;
- ``truncated``: the chain ends before the recorded head or before a signed checkpoint;
- ``bad signature``: a checkpoint whose Ed25519 signature does not verify under the key
  its ``key_id`` names;
- ``unknown key``: a checkpoint whose ``key_id`` is none of the keys checked against
  (after a key rotation: give the old public key too).

Several keys may be checked against at once (the keys before and after a rotation):
each checkpoint is checked against the one its ``key_id`` names.

A chain whose first events were pruned starts after an anchor: the checkpoint just before
its first event, whose hash the first event links to, and which the chain's latest
``audit.prune`` event names; without both, the missing start counts as deleted.
"""

from __future__ import annotations

import base64
import binascii
import itertools
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ragd.audit import GENESIS_HASH, AuditCheckpoint, AuditEvent, checkpoint_message, hash_of
from ragd.signing import Verifier
from ragd.store.base import AuditReader

# How far ahead (and how many seqs either way) an anomaly is examined to name its kind.
LOOKAHEAD = 64


@dataclass(frozen=True)
class AuditVerdict:
    """The outcome: ``ok``, or the first bad seq, the kind of problem and a sentence."""

    ok: bool
    checked: int
    checkpoints: int
    last_seq: int
    key_id: str
    first_bad_seq: int | None = None
    kind: str | None = None
    problem: str | None = None
    # Every key checked against (``key_id`` is the first), and how many of the checked
    # checkpoints each key signed.
    key_ids: list[str] = field(default_factory=list)
    signed_by: dict[str, int] = field(default_factory=dict)


class _Broken(Exception):
    def __init__(self, seq: int, kind: str, problem: str) -> None:
        super().__init__(problem)
        self.seq, self.kind, self.problem = seq, kind, problem


class _Ahead:
    """An iterator with a bounded lookahead."""

    def __init__(self, items: Iterator[AuditEvent]) -> None:
        self._items = items
        self._buffer: deque[AuditEvent] = deque()

    def peek(self, count: int) -> list[AuditEvent]:
        while len(self._buffer) < count:
            item = next(self._items, None)
            if item is None:
                break
            self._buffer.append(item)
        return list(itertools.islice(self._buffer, count))

    def next(self) -> AuditEvent | None:
        if self._buffer:
            return self._buffer.popleft()
        return next(self._items, None)


def claimed_seq(event: AuditEvent) -> int | None:
    """The seq under which ``event`` hashes to its stored hash: its own when intact, a
    nearby one when it was renumbered, None when its content changed."""
    if hash_of(event) == event.hash:
        return event.seq
    for distance in range(1, LOOKAHEAD + 1):
        for seq in (event.seq + distance, event.seq - distance):
            if seq > 0 and hash_of(event, seq=seq) == event.hash:
                return seq
    return None


def verify_chain(reader: AuditReader, verifiers: Verifier | Sequence[Verifier]) -> AuditVerdict:
    """The verdict on the chain ``reader`` sees, each checkpoint checked against the one
    of ``verifiers`` its ``key_id`` names."""
    keys = [verifiers] if isinstance(verifiers, Verifier) else list(verifiers)
    if not keys:
        raise ValueError("verify_chain needs at least one public key")
    walk = _Walk(reader, keys)
    try:
        walk.run()
    except _Broken as broken:
        return walk.verdict(broken)
    return walk.verdict(None)


class _Walk:
    """One pass over the chain; raises :class:`_Broken` at the first problem."""

    def __init__(self, reader: AuditReader, verifiers: list[Verifier]) -> None:
        self.reader = reader
        self.key_ids = list(dict.fromkeys(v.key_id for v in verifiers))
        self.verifiers = {v.key_id: v for v in verifiers}
        self.checked = 0
        self.signed = 0
        self.signed_by: dict[str, int] = {}
        self.last_seq = 0

    def verdict(self, broken: _Broken | None) -> AuditVerdict:
        return AuditVerdict(
            ok=broken is None,
            checked=self.checked,
            checkpoints=self.signed,
            last_seq=self.last_seq,
            key_id=self.key_ids[0],
            first_bad_seq=None if broken is None else broken.seq,
            kind=None if broken is None else broken.kind,
            problem=None if broken is None else broken.problem,
            key_ids=self.key_ids,
            signed_by=dict(self.signed_by),
        )

    def run(self) -> None:
        head_seq, head_hash = self.reader.head()
        events = _Ahead(self.reader.events())
        checkpoints = _Checkpoints(self.reader.checkpoints())
        first = events.peek(1)
        anchor = self._anchor(first[0] if first else None, checkpoints)
        expected = anchor.seq + 1 if anchor else 1
        prev = anchor.hash if anchor else GENESIS_HASH
        before_prev: str | None = None
        last_good_checkpoint = anchor.seq if anchor else 0
        prune_anchor: int | None = None
        while (event := events.next()) is not None:
            self._check_event(event, expected, prev, before_prev, events)
            for checkpoint in checkpoints.upto(event.seq):
                self._check_signature(checkpoint)
                if checkpoint.seq == event.seq and checkpoint.hash != event.hash:
                    raise _Broken(
                        last_good_checkpoint + 1,
                        "modified",
                        f"the signed checkpoint at seq {checkpoint.seq} does not match the "
                        f"chain: events after seq {last_good_checkpoint} were changed and "
                        "re-hashed",
                    )
                if checkpoint.seq == event.seq:
                    last_good_checkpoint = checkpoint.seq
            if event.action == "audit.prune":
                anchor_seq = event.detail.get("anchor_seq")
                prune_anchor = anchor_seq if isinstance(anchor_seq, int) else None
            before_prev, prev = prev, event.hash
            self.last_seq = event.seq
            self.checked += 1
            expected += 1
        self._check_end(anchor, prune_anchor, head_seq, head_hash, prev, checkpoints)

    def _anchor(
        self, first: AuditEvent | None, checkpoints: _Checkpoints
    ) -> AuditCheckpoint | None:
        """The checkpoint a pruned chain starts from, or None when it starts at seq 1."""
        if first is None or first.seq <= 1:
            return None
        anchor = None
        for checkpoint in checkpoints.upto(first.seq - 1):
            self._check_signature(checkpoint)
            anchor = checkpoint
        if anchor is None or anchor.seq != first.seq - 1:
            raise _Broken(1, "deleted", f"seq 1 to {first.seq - 1} are missing")
        return anchor

    def _check_signature(self, checkpoint: AuditCheckpoint) -> None:
        self.signed += 1
        verifier = self.verifiers.get(checkpoint.key_id)
        if verifier is None:
            raise _Broken(
                checkpoint.seq,
                "unknown key",
                f"the checkpoint at seq {checkpoint.seq} is signed by key "
                f"{checkpoint.key_id[:64]!r}, which is not among the keys checked against "
                f"({', '.join(self.key_ids)}); if it is the key of before a rotation, "
                "give its public key too",
            )
        message = checkpoint_message(
            seq=checkpoint.seq, hash=checkpoint.hash, key_id=checkpoint.key_id, at=checkpoint.at
        )
        try:
            signature = base64.b64decode(checkpoint.signature, validate=True)
        except (binascii.Error, ValueError):
            signature = b""
        if not verifier.verify(signature, message):
            raise _Broken(
                checkpoint.seq,
                "bad signature",
                f"the signature of the checkpoint at seq {checkpoint.seq} does not verify "
                f"under key {checkpoint.key_id}",
            )
        self.signed_by[checkpoint.key_id] = self.signed_by.get(checkpoint.key_id, 0) + 1

    def _check_event(
        self,
        event: AuditEvent,
        expected: int,
        prev: str,
        before_prev: str | None,
        ahead: _Ahead,
    ) -> None:
        if event.seq > expected:
            missing = (
                f"seq {expected} is missing"
                if event.seq == expected + 1
                else f"seq {expected} to {event.seq - 1} are missing"
            )
            raise _Broken(expected, "deleted", missing)
        claimed = claimed_seq(event)
        if claimed == expected:
            if event.prev_hash == prev:
                return
            if before_prev is not None and event.prev_hash == before_prev:
                raise _Broken(
                    expected - 1,
                    "inserted",
                    f"seq {expected - 1} is not part of the chain: seq {expected} links past it",
                )
            if before_prev is None:
                raise _Broken(
                    expected, "modified", f"seq {expected} does not link to the chain's start"
                )
            raise _Broken(
                expected - 1,
                "modified",
                f"seq {expected - 1} was changed and re-hashed: seq {expected} links to "
                "another hash",
            )
        if claimed is None:
            following = ahead.peek(1)
            if following and (
                following[0].prev_hash == prev or claimed_seq(following[0]) == expected
            ):
                raise _Broken(expected, "inserted", f"seq {expected} is not part of the chain")
            raise _Broken(expected, "modified", f"seq {expected} does not match its hash")
        if claimed > expected:
            if any(claimed_seq(later) == expected for later in ahead.peek(LOOKAHEAD)):
                raise _Broken(
                    expected,
                    "reordered",
                    f"seq {expected} holds the event of seq {claimed}: events were reordered",
                )
            raise _Broken(
                expected,
                "deleted",
                f"seq {expected} holds the event of seq {claimed}: events were deleted "
                "and the rest renumbered",
            )
        raise _Broken(
            claimed,
            "inserted",
            f"seq {expected} holds the event of seq {claimed}: events were inserted "
            "and the rest renumbered",
        )

    def _check_end(
        self,
        anchor: AuditCheckpoint | None,
        prune_anchor: int | None,
        head_seq: int,
        head_hash: str,
        prev: str,
        checkpoints: _Checkpoints,
    ) -> None:
        end = self.last_seq if self.checked else (anchor.seq if anchor else 0)
        for checkpoint in checkpoints.rest():
            self._check_signature(checkpoint)
            raise _Broken(
                end + 1,
                "truncated",
                f"the chain ends at seq {end} but a signed checkpoint vouches for seq "
                f"{checkpoint.seq}",
            )
        if head_seq > end:
            raise _Broken(
                end + 1, "truncated", f"the chain ends at seq {end} but its head is seq {head_seq}"
            )
        if head_seq < end:
            raise _Broken(
                head_seq + 1,
                "inserted",
                f"seq {head_seq + 1} to {end} lie past the chain head (seq {head_seq})",
            )
        if head_hash != prev:
            raise _Broken(end, "modified", f"seq {end} does not match the chain head's hash")
        if anchor is not None and prune_anchor != anchor.seq:
            raise _Broken(
                1,
                "deleted",
                f"seq 1 to {anchor.seq} are missing and no audit.prune event accounts for them",
            )


class _Checkpoints:
    """Checkpoints in seq order, taken as the walk passes their seq."""

    def __init__(self, items: Iterator[AuditCheckpoint]) -> None:
        self._items = items
        self._next: AuditCheckpoint | None = next(items, None)

    def upto(self, seq: int) -> Iterator[AuditCheckpoint]:
        while self._next is not None and self._next.seq <= seq:
            current, self._next = self._next, next(self._items, None)
            yield current

    def rest(self) -> Iterator[AuditCheckpoint]:
        while self._next is not None:
            current, self._next = self._next, next(self._items, None)
            yield current


__all__ = ["LOOKAHEAD", "AuditVerdict", "claimed_seq", "verify_chain"]
