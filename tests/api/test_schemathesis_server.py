"""The OpenAPI document is the contract: schemathesis against a real ``ragd serve``.

Every operation in ``/openapi.json`` gets a bounded number of generated requests (valid
and invalid ones), once on a server without keys (loopback mode: every caller is admin)
and once on a server with an admin key sent as a bearer token. Every response must be
no 5xx, a declared status, a declared content type, and match the declared schema; one
failure fails the test. Half of the requests to a path with an id use the id of a seeded
collection, document or chat session, so the routes behind a real id are exercised too
(deletes excepted, which would take the seeded data away from the others).

The batch route's NDJSON body has no serializer in schemathesis: one is registered here,
sending the generated document as one line (the schema describes a line).

Not checked here, and why: ``/mcp`` and the web page are not in the OpenAPI document
(``include_in_schema=False``: JSON-RPC and HTML, tested in tests/mcp and tests/web). The
streamed variants (``stream: true`` on /v1/ask, chat messages and chat completions) are
checked like the rest for status and content type, ``text/event-stream``; their event
payloads have no JSON schema schemathesis could check and are covered by
tests/api/test_sse.py and the stream tests.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.transport import SerializationContext
from schemathesis.transport.serialization import serialize_binary

from ragd.auth import generate_key
from tests.helpers import LiveServer, start_server, stop_server, wait_for_status

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Per operation and run; about 30 operations, so a few hundred requests per server.
EXAMPLES = 20
CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"max-examples": EXAMPLES},
    }
)
TEXT = "# Seeded\n\nThe seeded document says that lighthouses guide ships at night."


@schemathesis.serializer("application/x-ndjson")
def _ndjson_line(_ctx: SerializationContext, value: Any) -> bytes:
    """The batch route's NDJSON body: the generated document (the schema is one line)
    as one line. Values that are not JSON go as their bytes, as other bodies do."""
    return serialize_binary(value) + b"\n"


@dataclass
class Seeded:
    """A running server, what was stored in it, and the headers to send."""

    server: LiveServer
    headers: dict[str, str]
    ids: dict[str, str]
    turn: Iterator[int] = field(default_factory=itertools.count)

    def use_seeded_ids(self, case: Any) -> None:
        """Every other request to a path with an id names a seeded one."""
        if case.method == "DELETE" or next(self.turn) % 2:
            return
        for name in list(case.path_parameters or {}):
            if name in self.ids:
                case.path_parameters[name] = self.ids[name]


def _seed(server: LiveServer, headers: dict[str, str]) -> dict[str, str]:
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
        collection = http.post("/v1/collections", json={"name": "seeded"})
        assert collection.status_code == 201, collection.text
        cid = collection.json()["id"]
        upload = http.post(f"/v1/collections/{cid}/documents", json={"text": TEXT})
        assert upload.status_code == 202, upload.text
        document = wait_for_status(http, upload.headers["location"], "ready")
        session = http.post("/v1/chat/sessions", json={"title": "seeded"})
        assert session.status_code == 201, session.text
    return {
        "collection_id": cid,
        "document_id": document["id"],
        "session_id": session.json()["id"],
        "model": "ragd:seeded",
    }


@pytest.fixture(scope="module")
def keyless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    process, server = start_server(tmp_path_factory.mktemp("schemathesis-keyless"))
    try:
        yield Seeded(server, {}, _seed(server, {}))
    finally:
        stop_server(process)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    _prefix, secret = generate_key()
    data_dir: Path = tmp_path_factory.mktemp("schemathesis-keyed")
    process, server = start_server(data_dir, RAGD_ADMIN_KEY=secret)
    headers = {"Authorization": f"Bearer {secret}"}
    try:
        yield Seeded(server, headers, _seed(server, headers))
    finally:
        stop_server(process)


def _failures(seeded: Seeded) -> list[str]:
    """Run every operation in both generation modes; a line per operation that failed."""
    schema = schemathesis.openapi.from_url(f"{seeded.server.base_url}/openapi.json", config=CONFIG)
    found: list[str] = []
    operations = list(schema.get_all_operations())
    assert len(operations) > 20
    for result in operations:
        assert isinstance(result, Ok), result
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(mode))
            @_SETTINGS
            def run(case: Case[Any]) -> None:
                seeded.use_seeded_ids(case)
                case.call_and_validate(
                    base_url=seeded.server.base_url,
                    headers=seeded.headers,
                    checks=CHECKS,
                    timeout=60,
                )

            try:
                run()
            except Unsatisfiable:
                # Nothing to make invalid: an operation without parameters or body.
                assert mode is GenerationMode.NEGATIVE and not operation.body, operation.label
            except (
                Exception,
                BaseExceptionGroup,
            ) as exc:  # a failed check, reported with the request that broke it
                found.append(f"{operation.label} ({mode.value}): {exc}")
    return found


_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failure is reported
    suppress_health_check=list(HealthCheck),
)


def test_keyless_server_keeps_its_openapi_contract(keyless: Seeded) -> None:
    failures = _failures(keyless)
    assert not failures, "\n\n".join(failures)


def test_keyed_server_keeps_its_openapi_contract(keyed: Seeded) -> None:
    failures = _failures(keyed)
    assert not failures, "\n\n".join(failures)
