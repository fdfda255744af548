"""Collections: named sets of documents, each bound to one embedding model."""

from __future__ import annotations

import re

from ragd.auth import Allowed
from ragd.domain import Collection
from ragd.embedding.base import Embedder
from ragd.errors import Forbidden, InvalidInput, NotFound
from ragd.limits import CEILINGS, COLLECTION_NAME_PATTERN
from ragd.store.base import Store

_NAME = re.compile(COLLECTION_NAME_PATTERN)


def validate_name(name: str) -> str:
    longest = CEILINGS.collection_name_chars
    if not name or len(name) > longest or not _NAME.match(name):
        raise InvalidInput(
            f"collection name must be 1-{longest} characters of letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    return name


def validate_description(description: str) -> str:
    if len(description) > CEILINGS.description_chars:
        raise InvalidInput(f"description must be at most {CEILINGS.description_chars} characters")
    return description


class CollectionService:
    """Collection CRUD. ``allowed`` is the caller's collection limit (None: all): any
    collection outside it is reported missing, exactly as if it did not exist."""

    def __init__(self, store: Store, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder

    def create(self, name: str, description: str = "", *, allowed: Allowed = None) -> Collection:
        if allowed is not None:
            # A new collection could never be inside the key's fixed list.
            raise Forbidden("a key limited to collections cannot create collections")
        return self.store.create_collection(
            name=validate_name(name),
            description=validate_description(description),
            embedding_model=self.embedder.model_name,
            embedding_dim=self.embedder.dimension,
        )

    def list_all(self, *, allowed: Allowed = None, counts: bool = True) -> list[Collection]:
        found = self.store.list_collections(counts=counts)
        return found if allowed is None else [c for c in found if c.id in allowed]

    def get(self, ref: str, *, allowed: Allowed = None, counts: bool = True) -> Collection:
        """A collection by id or, for humans at a terminal, by name. ``counts=False``
        when only its identity is needed: the totals scan documents and chunks."""
        collection = self._resolve(ref, counts)
        if allowed is not None and collection.id not in allowed:
            raise NotFound(f"collection {ref!r} not found")
        return collection

    def _resolve(self, ref: str, counts: bool = True) -> Collection:
        try:
            return self.store.get_collection(ref, counts=counts)
        except NotFound:
            if not _NAME.match(ref):
                raise
            return self.store.get_collection_by_name(ref, counts=counts)

    def update(
        self,
        ref: str,
        *,
        name: str | None = None,
        description: str | None = None,
        allowed: Allowed = None,
    ) -> Collection:
        collection = self.get(ref, allowed=allowed)
        return self.store.update_collection(
            collection.id,
            name=None if name is None else validate_name(name),
            description=None if description is None else validate_description(description),
        )

    def delete(self, ref: str, *, allowed: Allowed = None) -> None:
        self.store.delete_collection(self.get(ref, allowed=allowed).id)
