"""``ragd audit pubkey | verify | prune | list``: the audit log from the command line.

``verify`` exits 0 when the chain and every checkpoint signature hold and 1 naming the
first bad seq otherwise (2 for a usage or configuration error), so a cron job or a CI
step can run it as is.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ragd.audit import AuditFilters, format_at
from ragd.cli.common import _container, console, fail
from ragd.errors import ConfigError
from ragd.services.audit_verify import AuditVerdict

audit_app = typer.Typer(
    help="The audit log: verify its chain and signatures, print the public key, prune.",
    no_args_is_help=True,
)


@audit_app.command("pubkey")
def audit_pubkey() -> None:
    """Print the public key (PEM) that verifies the checkpoint signatures."""
    with _container(migrate=False) as container:
        pem = container.audit.public_key_pem()
    print(pem, end="")  # plain: an auditor pipes this into a file


@audit_app.command("verify")
def audit_verify(
    public_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key",
            help="Check signatures against this PEM public key instead of the deployment's; "
            "give it once per key (the keys before and after a rotation): each checkpoint "
            "is checked against the key its key_id names.",
            dir_okay=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")] = False,
) -> None:
    """Check every event's hash and link and every checkpoint's signature."""
    with _container(migrate=False) as container:
        try:
            verdict = container.audit.verify(public_key or ())
        except ConfigError as exc:
            raise fail(escape(exc.detail)) from None
    if as_json:
        console.print_json(json.dumps(asdict(verdict)))
    elif verdict.ok:
        console.print(
            f"audit log verified: {verdict.checked} events up to seq {verdict.last_seq}, "
            f"{verdict.checkpoints} checkpoint signatures ({_signers(verdict)})",
            soft_wrap=True,  # one line, for a cron job's log
        )
    else:
        print(
            f"audit log NOT verified: first bad seq {verdict.first_bad_seq}: "
            f"{verdict.kind}: {verdict.problem}"
        )
    if not verdict.ok:
        raise typer.Exit(1)


@audit_app.command("prune")
def audit_prune(
    before: Annotated[
        str, typer.Option("--before", help="Delete events older than this date (ISO 8601, UTC).")
    ],
) -> None:
    """Delete old events; the newest checkpoint before DATE anchors what remains."""
    when = _parse_date(before)
    with _container() as container:
        pruned = container.audit.prune(when)
    if pruned.anchor_seq is None:
        console.print(f"nothing to prune: no checkpoint was signed before {format_at(when)}")
        return
    console.print(
        f"pruned {pruned.deleted} events; the checkpoint at seq {pruned.anchor_seq} "
        "anchors the rest"
    )


@audit_app.command("list")
def audit_list(
    action: Annotated[str | None, typer.Option(help="Only this action.")] = None,
    actor: Annotated[str | None, typer.Option(help="Only this actor.")] = None,
    target: Annotated[str | None, typer.Option(help="Only events naming this id.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.", min=1, max=100)] = 20,
) -> None:
    """Print the newest events as JSON lines."""
    filters = AuditFilters(action=action, actor=actor, target=target)
    with _container(migrate=False) as container:
        page = container.audit.list_page(filters, limit=limit, cursor=None)
    for event in page.items:
        record = {**asdict(event), "at": format_at(event.at), "target": list(event.target)}
        print(json.dumps(record, sort_keys=True))


def _signers(verdict: AuditVerdict) -> str:
    """Which keys signed the checkpoints checked, or the key checked against."""
    if not verdict.signed_by:
        return f"key {verdict.key_id}"
    if len(verdict.signed_by) == 1:
        return f"key {next(iter(verdict.signed_by))}"
    return "keys " + ", ".join(f"{key} ({n})" for key, n in verdict.signed_by.items())


def _parse_date(text: str) -> dt.datetime:
    """An ISO date or date-time; a date means its midnight, UTC when no zone is given."""
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise fail(f"--before: {text!r} is not an ISO 8601 date such as 2026-01-31") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)
