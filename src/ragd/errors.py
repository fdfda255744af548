"""Domain errors, free of HTTP.

Services, engines and stores raise these; only ``ragd.api.problems`` maps them to
HTTP statuses, and the CLI prints their ``detail``. The hierarchy::

    RagdError
    ├── Unauthorized             no API key, or one that is unknown or revoked (401)
    ├── Forbidden                a valid key whose scope does not allow this (403)
    ├── NotFound                 an id or name that does not exist (404)
    ├── Conflict                 a unique name already taken (409)
    ├── InvalidInput             a value the caller must change (422)
    │   ├── UnsafeURL            a URL refused by the SSRF guard
    │   └── EmptyDocument        a document with no text in it
    ├── UnsupportedMediaType     a file type no parser reads (415)
    ├── PayloadTooLarge          over a configured size cap (413)
    ├── ParseError               a document that cannot be read (permanent job failure)
    ├── FetchError               a URL that cannot be fetched (permanent)
    ├── Unavailable              a dependency is down; try again later (503)
    │   ├── EmbeddingError       the embedder failed
    │   └── GenerationError      the LLM failed
    ├── TransientError           worth retrying (timeouts, 5xx, locked database)
    └── ConfigError              the server's own configuration is wrong (start-up, CLI)
"""

from __future__ import annotations


class RagdError(Exception):
    """Base of every error ragd raises on purpose; ``detail`` is safe to show a user."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Unauthorized(RagdError):
    """The request carries no usable API key: missing, malformed, unknown or revoked."""


class Forbidden(RagdError):
    """The key is valid but its scope or collection limit does not allow the action.

    Resources outside a key's collections are :class:`NotFound` instead, so that ids
    of other tenants do not leak.
    """


class NotFound(RagdError):
    """The addressed resource does not exist (or is not visible to the caller)."""


class Conflict(RagdError):
    """The request clashes with existing state, such as a taken collection name."""


class InvalidInput(RagdError):
    """The caller sent a value that can never succeed as it is."""


class UnsafeURL(InvalidInput):
    """A URL refused because it points at a private, loopback or otherwise unsafe host."""


class EmptyDocument(InvalidInput):
    """A document that holds no text once normalized."""


class UnsupportedMediaType(RagdError):
    """A file whose type no parser understands."""


class PayloadTooLarge(RagdError):
    """A body, file or fetched resource over its configured size cap."""


class ParseError(RagdError):
    """A document that claims a supported type but cannot be read (corrupt, encrypted)."""


class FetchError(RagdError):
    """A URL that could not be fetched for a reason retrying will not fix."""


class Unavailable(RagdError):
    """A dependency (database, embedder, LLM) cannot serve right now."""


class EmbeddingError(Unavailable):
    """The embedding model failed to load or to embed."""


class GenerationError(Unavailable):
    """The answer generator (LLM) failed."""


class TransientError(RagdError):
    """A failure that a later retry may not meet: timeouts, 5xx, a locked database."""


class ConfigError(RagdError):
    """A setting or a file it names is unusable (a key file that is not a key, say).

    Raised at start-up or by a CLI command, not by a request: the operator, not the
    client, must fix it.
    """
