"""``ragd keys ...`` and the start-up guard of ``ragd serve``: the CLI side of API keys.

The shared helpers (a migrated container, the consoles) come from :mod:`ragd.cli.common`.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer
from rich.table import Table

from ragd.auth import SCOPES, is_loopback
from ragd.cli.common import _container, console, err_console
from ragd.domain import ApiKey

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)

CREATE_HINT = "ragd keys create --name NAME --scope admin"


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", "-n", help="What the key is for.")],
    scope: Annotated[str, typer.Option("--scope", "-s", help="read, write or admin.")],
    collection: Annotated[
        list[str] | None,
        typer.Option("--collection", "-c", help="Limit the key to this collection (repeat)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a key and print it once: only its hash is stored."""

    if scope not in SCOPES:
        err_console.print(f"[red]error:[/red] --scope must be one of {', '.join(SCOPES)}")
        raise typer.Exit(2)
    with _container() as container:
        created = container.keys.create(name, scope, collection)
    if as_json:
        console.print_json(json.dumps({**_key_json(created.key), "key": created.secret}))
        return
    console.print(f"created {created.key.scope} key [bold]{created.key.name}[/bold]")
    console.print(f"id {created.key.id}, prefix {created.key.prefix}")
    console.print("key (shown only now; store it somewhere safe):")
    print(created.secret)  # plain print: no wrapping or markup inside the secret


@keys_app.command("list")
def keys_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List keys by prefix; secrets are never stored, so never shown."""

    with _container() as container:
        found = container.keys.list_all()
    if as_json:
        console.print_json(json.dumps([_key_json(k) for k in found]))
        return
    table = Table("id", "name", "prefix", "scope", "collections", "last used", "revoked")
    for k in found:
        table.add_row(
            k.id,
            k.name,
            k.prefix,
            k.scope,
            "all" if k.collection_ids is None else ", ".join(k.collection_ids),
            _when(k.last_used_at),
            _when(k.revoked_at),
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id.")]) -> None:
    """Revoke a key: requests with it get 401 from now on."""

    with _container() as container:
        revoked = container.keys.revoke(key_id)
    console.print(f"revoked key [bold]{revoked.name}[/bold] ({revoked.prefix})")


def refuse_unprotected_bind(host: str) -> None:
    """Stop ``ragd serve`` on a non-loopback address when no key exists and auth is on.

    Without keys such a server would answer nobody but this machine, which is never
    what someone binding to a public address wants; saying so now beats a wall of 401s.
    """

    if host == "localhost" or is_loopback(host):
        return
    with _container() as container:
        mode = container.keys.prepare(container.settings)
    if mode != "loopback-only":
        return
    err_console.print(
        f"[red]error:[/red] refusing to listen on {host}: no API keys exist, so ragd would "
        f"answer loopback clients only. Create a key first with '{CREATE_HINT}' (or set "
        "RAGD_ADMIN_KEY), or set RAGD_AUTH_DISABLED=true to serve every client without "
        "keys on a trusted network."
    )
    raise typer.Exit(2)


def _key_json(key: ApiKey) -> dict[str, object]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "scope": key.scope,
        "collections": None if key.collection_ids is None else list(key.collection_ids),
        "created_at": key.created_at.isoformat(),
        "last_used_at": _when(key.last_used_at) or None,
        "revoked_at": _when(key.revoked_at) or None,
    }


def _when(moment: dt.datetime | None) -> str:
    return moment.isoformat() if moment is not None else ""
