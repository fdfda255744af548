"""Every input bound ragd enforces, in one object.

A :class:`Limits` is built once from Settings (:meth:`ragd.config.Settings.limits`; config
imports this module, never the reverse) and handed to every service that checks input,
and the HTTP app shows the same values in its OpenAPI document. The defaults of the
fields are the hard ceilings: the ``RAGD_MAX_*`` settings may tighten the configurable
ones (Settings refuses anything above :data:`CEILINGS`), and the pydantic request models
state the ceilings, since they exist before any settings do. Nothing else in ragd holds a
number for these bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

COLLECTION_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


@dataclass(frozen=True)
class Limits:
    """The bounds in force; ``Limits()`` is the ceiling of each."""

    # Configurable through RAGD_MAX_* (tighten only).
    query_chars: int = 1000
    """Search queries, questions, chat messages and golden-set queries."""
    top_k: int = 100
    """Results of one search, and the cutoff k of an evaluation."""
    page_size: int = 100
    """Items on one page of a listing (documents, chat messages)."""
    metadata_bytes: int = 16 * 1024
    url_chars: int = 2000
    filter_keys: int = 32
    """Keys of one metadata filter: each becomes an SQL condition."""
    filter_key_chars: int = 128
    """Length of one filter key."""
    batch_documents: int = 1000
    """Documents in one batch upload (``documents:batch``): all are answered in one
    response and written by one request, so the ceiling keeps both bounded."""

    # Fixed: part of the contract, not of the deployment.
    default_page_size: int = 50
    answer_top_k: int = 20
    collection_name_chars: int = 200
    description_chars: int = 2000
    key_name_chars: int = 200
    document_title_chars: int = 500
    chat_title_chars: int = 200
    system_prompt_chars: int = 4000
    golden_queries: int = 500
    golden_judgments: int = 1000
    """Judged documents per golden query."""
    golden_document_id_chars: int = 200
    golden_grade: int = 1000
    json_depth: int = 32
    """Nesting of a JSON request body; no ragd body needs more than a handful."""
    source_urls: int = 1000
    """URLs in the location of one ``urls`` source (a sitemap scales further)."""
    webhook_body_bytes: int = 1024 * 1024
    """A source webhook's body: only signed, never parsed."""

    def value(self, name: str) -> int:
        """The bound called ``name`` (a field name), for schemas that refer to it."""
        if name not in _FIELDS:
            raise KeyError(f"no limit called {name!r}")
        found: int = getattr(self, name)
        return found


CEILINGS = Limits()
_FIELDS = frozenset(Limits.__dataclass_fields__)
