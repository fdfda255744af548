"""Export and import of whole collections as one signed, optionally encrypted archive.

The pieces, bottom up: :mod:`.crypto` (passphrase encryption in authenticated frames),
:mod:`.manifest` (table of contents and signature), :mod:`.tables` (the Parquet tables),
:mod:`.archive` (the tar stream, staged and verified), :mod:`.source` (an unpacked archive
as the store's import source) and :mod:`.service` (what the transports call).
"""

from ragd.services.transfer.service import (
    ExportSummary,
    ImportSummary,
    TransferService,
    archive_is_encrypted,
)

__all__ = ["ExportSummary", "ImportSummary", "TransferService", "archive_is_encrypted"]
