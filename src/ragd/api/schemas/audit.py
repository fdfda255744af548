"""Bodies of /v1/audit: events as stored, and the verdict of a verification."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class AuditEventPublic(BaseModel):
    """One event of the hash chain, with the fields its hash covers."""

    seq: int = Field(description="Position in the chain: gap-free, increasing.")
    at: str = Field(description="When, UTC, as hashed: YYYY-MM-DDTHH:MM:SS.ffffffZ.")
    actor: str = Field(description="The key prefix, or 'local' / 'anonymous'.")
    action: str = Field(description="What happened, e.g. document.create.")
    target: list[str] = Field(description="The ids it touched.")
    request_id: str | None
    client: str | None = Field(description="The client address of the request, if any.")
    detail: dict[str, Any] = Field(description="Small JSON: counts, hashes; never text.")
    prev_hash: str
    hash: str


class AuditEventList(BaseModel):
    events: list[AuditEventPublic]
    next_cursor: str | None


class AuditVerdictPublic(BaseModel):
    """Whether the chain and every checkpoint signature hold; if not, the first bad seq."""

    ok: bool
    checked: int = Field(description="Events checked.")
    checkpoints: int = Field(description="Checkpoint signatures checked.")
    last_seq: int = Field(description="The last event checked.")
    key_id: str = Field(description="The public key checked against (the first, if several).")
    first_bad_seq: int | None = None
    kind: str | None = Field(
        None,
        description="modified, deleted, inserted, reordered, truncated, bad signature or "
        "unknown key.",
    )
    problem: str | None = None
    key_ids: list[str] = Field(
        default_factory=list,
        description="Every public key checked against: the signing key's, then those of "
        "RAGD_AUDIT_PUBLIC_KEY_FILES (keys before a rotation).",
    )
    signed_by: dict[str, int] = Field(
        default_factory=dict, description="Checkpoints verified, by the key_id that signed them."
    )
