"""Collections: named sets of documents, each bound to one embedding model."""

from __future__ import annotations

import re

from ragd.embedding.base import Embedder
from ragd.errors import InvalidInput, NotFound
from ragd.store.base import Store
from ragd.store.records import Collection

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
NAME_MAX = 200
DESCRIPTION_MAX = 2000
_NAME = re.compile(NAME_PATTERN)


def validate_name(name: str) -> str:
    if not name or len(name) > NAME_MAX or not _NAME.match(name):
        raise InvalidInput(
            f"collection name must be 1-{NAME_MAX} characters of letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    return name


def validate_description(description: str) -> str:
    if len(description) > DESCRIPTION_MAX:
        raise InvalidInput(f"description must be at most {DESCRIPTION_MAX} characters")
    return description


class CollectionService:
    def __init__(self, store: Store, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder

    def create(self, name: str, description: str = "") -> Collection:
        return self.store.create_collection(
            name=validate_name(name),
            description=validate_description(description),
            embedding_model=self.embedder.model_name,
            embedding_dim=self.embedder.dimension,
        )

    def list_all(self) -> list[Collection]:
        return self.store.list_collections()

    def get(self, ref: str) -> Collection:
        """A collection by id or, for humans at a terminal, by name."""
        try:
            return self.store.get_collection(ref)
        except NotFound:
            if not _NAME.match(ref):
                raise
            return self.store.get_collection_by_name(ref)

    def update(
        self, ref: str, *, name: str | None = None, description: str | None = None
    ) -> Collection:
        collection = self.get(ref)
        return self.store.update_collection(
            collection.id,
            name=None if name is None else validate_name(name),
            description=None if description is None else validate_description(description),
        )

    def delete(self, ref: str) -> None:
        self.store.delete_collection(self.get(ref).id)
