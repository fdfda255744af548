"""A writer process for the audit concurrency test: ``python -m tests.store.audit_writer
URL DATA_DIR TAG ROUNDS GO_FILE``. Waits for GO_FILE so that every writer starts at once,
then changes the store ROUNDS times (3 audit events a round)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ragd.config import load_settings
from ragd.domain import NewDocument
from ragd.store import open_store


def main(url: str, data_dir: str, tag: str, rounds: int, go_file: str) -> None:
    settings = load_settings(database_url=url, data_dir=Path(data_dir), audit_checkpoint_every=7)
    store = open_store(settings)
    deadline = time.monotonic() + 60
    while not Path(go_file).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        for n in range(rounds):
            collection = store.create_collection(
                name=f"{tag}-{n}", description="", embedding_model="m", embedding_dim=8
            )
            text = f"{tag} round {n}".encode()
            document, _ = store.add_document(
                NewDocument(
                    collection_id=collection.id,
                    title=None,
                    source_type="text",
                    source=None,
                    mime_type="text/plain",
                    content_hash=None,
                    source_hash=None,
                    metadata={},
                    content=text,
                )
            )
            store.delete_document(document.id)
    finally:
        store.close()


if __name__ == "__main__":
    url, data_dir, tag, rounds, go_file = sys.argv[1:6]
    main(url, data_dir, tag, int(rounds), go_file)
