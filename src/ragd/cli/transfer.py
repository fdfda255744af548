"""``ragd export`` and ``ragd import``: a collection to one archive file and back.

Both run here and now in this process, on the database the settings name (the server
may keep running). The passphrase of an encrypted archive comes from
``--passphrase-file``, then ``RAGD_EXPORT_PASSPHRASE``, then a hidden prompt; never
from a log or an error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ragd.cli.common import _container, console, err_console, fail
from ragd.services.transfer import archive_is_encrypted
from ragd.signing import Verifier, load_verifier

_MAX_PASSPHRASE_FILE = 64 * 1024

PassphraseFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="Read the passphrase from this file (its first line).",
        dir_okay=False,
    ),
]
PassphraseOpt = Annotated[
    str | None,
    typer.Option(
        "--passphrase",
        envvar="RAGD_EXPORT_PASSPHRASE",
        help="The passphrase; prefer the environment variable or --passphrase-file, "
        "since a command line is visible to other users of the machine.",
    ),
]


def export(
    collection: Annotated[str, typer.Option("--collection", "-c", help="Collection name or id.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The archive file to write.", dir_okay=False)
    ],
    with_chats: Annotated[
        bool, typer.Option("--with-chats", help="Include chat sessions over the collection.")
    ] = False,
    encrypt: Annotated[
        bool, typer.Option("--encrypt", help="Encrypt the archive with a passphrase.")
    ] = False,
    passphrase_file: PassphraseFileOpt = None,
    passphrase: PassphraseOpt = None,
) -> None:
    """Export a collection (documents, sources, chunks with their vectors) to one signed
    archive file."""
    secret = None
    if encrypt or passphrase_file is not None:
        secret = _passphrase(passphrase_file, passphrase, confirm=True)
    with _container() as container:
        done = container.transfer.export(
            collection, output, with_chats=with_chats, passphrase=secret, actor="cli"
        )
    counts = done.counts
    console.print(
        f"exported [bold]{done.collection.name}[/bold]: {counts['documents']} documents, "
        f"{counts['chunks']} chunks, {counts['sources']} sources"
        + (f", {counts['chat_sessions']} chat sessions" if with_chats else "")
    )
    console.print(
        f"wrote {done.path} ({done.size:,} bytes, "
        f"{'encrypted, ' if done.encrypted else ''}signed by key {done.key_id})"
    )


def import_archive(
    archive: Annotated[Path, typer.Argument(help="The archive file.", exists=True, dir_okay=False)],
    collection: Annotated[
        str | None,
        typer.Option("--collection", "-c", help="Import under this name instead of its own."),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            help="Trust archives signed by this Ed25519 public key (PEM); default: this "
            "deployment's own key.",
            dir_okay=False,
        ),
    ] = None,
    allow_unsigned: Annotated[
        bool,
        typer.Option(
            "--allow-unsigned",
            help="Import an archive that is unsigned or signed by an unknown key, trusting "
            "its hashes alone.",
        ),
    ] = False,
    passphrase_file: PassphraseFileOpt = None,
    passphrase: PassphraseOpt = None,
) -> None:
    """Import a collection from an archive: verified whole first, then written all or
    nothing."""
    secret = None
    if archive_is_encrypted(archive):
        secret = _passphrase(passphrase_file, passphrase, confirm=False)
    with _container() as container:
        trusted: Verifier | None = load_verifier(public_key) if public_key else None
        with container.transfer.verified(
            archive, passphrase=secret, trusted=trusted, allow_unsigned=allow_unsigned
        ) as unpacked:
            err_console.print(
                f"verified {archive.name}: signed by "
                f"{unpacked.key_id or 'an untrusted key (allowed)'}; importing"
            )
            done = container.transfer.import_unpacked(unpacked, name=collection, actor="cli")
    outcome = done.outcome
    console.print(
        f"imported [bold]{outcome.collection.name}[/bold] ({outcome.collection.id}): "
        f"{outcome.documents} documents, {outcome.chunks} chunks"
        + (f", {outcome.chat_sessions} chat sessions" if outcome.chat_sessions else "")
    )
    if not done.embeddings_reused:
        console.print(
            f"the archive's vectors are from {done.source_collection.get('embedding_model')!r}, "
            f"this deployment embeds with {outcome.collection.embedding_model!r}: "
            f"{outcome.requeued} documents are queued to be embedded again by the workers"
        )
    if not outcome.document_ids_kept:
        console.print("document ids were taken in this database: the documents got new ids")


def _passphrase(path: Path | None, given: str | None, *, confirm: bool) -> str:
    """From the file, else the option or its environment variable, else a prompt."""
    if path is not None:
        try:
            if path.stat().st_size > _MAX_PASSPHRASE_FILE:
                raise fail(f"{path} is too large to be a passphrase file")
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise fail(f"cannot read the passphrase file {path}: {exc}") from None
        secret = text.splitlines()[0] if text else ""
    elif given is not None:
        secret = given
    elif sys.stdin.isatty():
        secret = typer.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm)
    else:
        raise fail(
            "the archive needs a passphrase: give --passphrase-file or set "
            "RAGD_EXPORT_PASSPHRASE (there is no terminal to ask on)"
        )
    if not secret:
        raise fail("the passphrase is empty")
    return secret
