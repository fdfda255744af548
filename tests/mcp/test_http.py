"""``/mcp`` on a real ``ragd serve``, driven by the MCP SDK's own streamable HTTP client
in both protocol eras: the keyless loopback default, and keys exactly as /v1 has them (a
collection-limited key sees only its collection; missing, wrong and revoked keys are
refused with the API's 401 problem)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from mcp import Client, MCPError

from ragd.auth import generate_key
from tests.helpers import start_server, stop_server, wait_for_status
from tests.mcp.corpus import CORPUS
from tests.mcp.sdk import over_http, structured, text_of

MODES = ["auto", "legacy"]  # 2026-07-28 discovery, and the 2025 initialize handshake
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


@dataclass
class Seeded:
    base_url: str
    collections: dict[str, str]  # name -> id
    documents: dict[str, list[str]]  # collection name -> document ids
    admin_key: str | None = None

    @property
    def mcp_url(self) -> str:
        return f"{self.base_url}/mcp"


def _seed(base_url: str, headers: dict[str, str]) -> Seeded:
    seeded = Seeded(base_url, {}, {})
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
        for name, files in CORPUS.items():
            created = http.post("/v1/collections", json={"name": name})
            assert created.status_code == 201, created.text
            seeded.collections[name] = created.json()["id"]
            seeded.documents[name] = []
            for text in files.values():
                posted = http.post(
                    f"/v1/collections/{seeded.collections[name]}/documents", json={"text": text}
                )
                assert posted.status_code == 202, posted.text
                ready = wait_for_status(http, posted.headers["location"], "ready")
                seeded.documents[name].append(ready["id"])
    return seeded


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """No key exists: the server answers loopback clients only, as admin."""
    process, server = start_server(tmp_path_factory.mktemp("mcp-open"))
    try:
        yield _seed(server.base_url, {})
    finally:
        stop_server(process)


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    _, admin = generate_key()
    process, server = start_server(tmp_path_factory.mktemp("mcp-keyed"), RAGD_ADMIN_KEY=admin)
    try:
        seeded = _seed(server.base_url, {"Authorization": f"Bearer {admin}"})
        seeded.admin_key = admin
        yield seeded
    finally:
        stop_server(process)


def _create_key(seeded: Seeded, **body: object) -> dict[str, object]:
    created = httpx.post(
        f"{seeded.base_url}/v1/keys",
        json={"name": "mcp", **body},
        headers={"Authorization": f"Bearer {seeded.admin_key}"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    key: dict[str, object] = created.json()
    return key


@pytest.mark.parametrize("mode", MODES)
def test_keyless_loopback_serves_every_tool(open_server: Seeded, mode: str) -> None:
    lighthouse = open_server.documents["wonders"][0]

    async def scenario(client: Client) -> None:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert tools == {"search", "ask", "list_collections", "get_document"}
        listed = structured(await client.call_tool("list_collections", {}))
        assert {c["name"] for c in listed["collections"]} == {"wonders", "drinks"}

        answered = await client.call_tool(
            "ask", {"question": "How tall was the lighthouse?", "collections": ["wonders"]}
        )
        answer = structured(answered)
        assert "100 metres" in answer["answer"]
        first = answer["citations"][0]
        assert first["document_id"] == lighthouse and f"[{first['n']}]" in answer["answer"]
        assert first["title"] == "Lighthouse of Alexandria" and first["chunk_id"]
        assert "100 metres" in first["snippet"]

        hits = structured(
            await client.call_tool(
                "search",
                {"query": "nine bars of pressure", "mode": "keyword", "top_k": 1},
            )
        )["results"]
        assert [h["document_id"] for h in hits] == open_server.documents["drinks"]

        document = structured(await client.call_tool("get_document", {"id": lighthouse}))
        assert document["status"] == "ready" and "Ptolemy II" in document["excerpt"]
        read = await client.read_resource(f"ragd://documents/{lighthouse}")
        assert "## Destruction" in read.contents[0].text  # type: ignore[union-attr]

        failed = await client.call_tool("search", {"query": "x", "collections": ["nope"]})
        assert failed.is_error and "collection 'nope' not found" in text_of(failed)

    over_http(open_server.mcp_url, scenario, mode=mode)


@pytest.mark.parametrize("mode", MODES)
def test_a_collection_limited_key_sees_only_its_collection(keyed_server: Seeded, mode: str) -> None:
    key = _create_key(keyed_server, scope="read", collections=[keyed_server.collections["wonders"]])
    hidden_collection = keyed_server.collections["drinks"]
    hidden_doc = keyed_server.documents["drinks"][0]

    async def scenario(client: Client) -> None:
        listed = structured(await client.call_tool("list_collections", {}))
        assert [c["name"] for c in listed["collections"]] == ["wonders"]

        everything = structured(
            await client.call_tool("search", {"query": "espresso coffee beans pressure"})
        )
        assert everything["results"]
        assert hidden_doc not in {h["document_id"] for h in everything["results"]}
        answer = structured(await client.call_tool("ask", {"question": "How is espresso made?"}))
        assert hidden_doc not in {c["document_id"] for c in answer["citations"]}

        refusals: list[tuple[str, dict[str, Any]]] = [
            ("search", {"query": "coffee", "collections": [hidden_collection]}),
            ("search", {"query": "coffee", "collections": ["drinks"]}),
            ("ask", {"question": "coffee?", "collections": [hidden_collection]}),
            ("get_document", {"id": hidden_doc}),
        ]
        for name, arguments in refusals:
            refused = await client.call_tool(name, arguments)
            assert refused.is_error and "not found" in text_of(refused), text_of(refused)
        with pytest.raises(MCPError, match="not found"):
            await client.read_resource(f"ragd://documents/{hidden_doc}")

    over_http(keyed_server.mcp_url, scenario, key=str(key["key"]), mode=mode)


def test_an_unlimited_key_sees_every_collection(keyed_server: Seeded) -> None:
    key = _create_key(keyed_server, scope="read")

    async def scenario(client: Client) -> set[str]:
        listed = structured(await client.call_tool("list_collections", {}))
        return {c["name"] for c in listed["collections"]}

    assert over_http(keyed_server.mcp_url, scenario, key=str(key["key"])) == {"wonders", "drinks"}


def test_missing_wrong_and_revoked_keys_are_refused(keyed_server: Seeded) -> None:
    revoked = _create_key(keyed_server, scope="read")
    gone = httpx.delete(
        f"{keyed_server.base_url}/v1/keys/{revoked['id']}",
        headers={"Authorization": f"Bearer {keyed_server.admin_key}"},
        timeout=30,
    )
    assert gone.status_code == 204
    _, wrong = generate_key()
    cases = [
        ({}, "an API key is required"),
        ({"Authorization": f"Bearer {wrong}"}, "the API key is not valid"),
        ({"X-API-Key": wrong}, "the API key is not valid"),
        ({"Authorization": f"Bearer {revoked['key']}"}, "the API key has been revoked"),
    ]
    for headers, detail in cases:
        response = httpx.post(
            keyed_server.mcp_url, json=INITIALIZE, headers={**MCP_HEADERS, **headers}, timeout=30
        )
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["detail"].startswith(detail)

    async def scenario(client: Client) -> None:
        await client.call_tool("list_collections", {})

    with pytest.raises(BaseException) as refused:  # the SDK's task group may wrap it
        over_http(keyed_server.mcp_url, scenario, key=wrong)
    assert _contains(refused.value, MCPError), refused.value


def _contains(error: BaseException, kind: type[BaseException]) -> bool:
    if isinstance(error, BaseExceptionGroup):
        return any(_contains(inner, kind) for inner in error.exceptions)
    return isinstance(error, kind)


def test_x_api_key_works_like_bearer(keyed_server: Seeded) -> None:
    key = _create_key(keyed_server, scope="read", collections=["drinks"])
    response = httpx.post(
        keyed_server.mcp_url,
        json=INITIALIZE,
        headers={**MCP_HEADERS, "X-API-Key": str(key["key"])},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["result"]["serverInfo"]["name"] == "ragd"


def test_requests_outside_the_protocol_are_api_problems(open_server: Seeded) -> None:
    """Foreign browser origins, other methods, other bodies: the API's problems, not the
    transport's plain-text refusals (or a GET stream held open forever)."""
    foreign = httpx.post(
        open_server.mcp_url,
        json=INITIALIZE,
        headers={**MCP_HEADERS, "Origin": "http://rebound.example:8000"},
        timeout=30,
    )
    assert foreign.status_code == 403
    assert foreign.headers["content-type"] == "application/problem+json"
    assert "may not use MCP" in foreign.json()["detail"]

    huge = httpx.post(
        open_server.mcp_url,
        content=b"[" + b" " * (2 * 1024 * 1024) + b"]",
        headers={**MCP_HEADERS, "Content-Type": "application/json"},
        timeout=30,
    )
    assert huge.status_code == 413
    assert huge.headers["content-type"] == "application/problem+json"

    text = httpx.post(
        open_server.mcp_url,
        content=b"{}",
        headers={**MCP_HEADERS, "Content-Type": "text/plain"},
        timeout=30,
    )
    assert text.status_code == 415
    assert text.headers["content-type"] == "application/problem+json"

    for method in ("GET", "DELETE"):
        other = httpx.request(method, open_server.mcp_url, headers=MCP_HEADERS, timeout=30)
        assert other.status_code == 405
        assert other.headers["content-type"] == "application/problem+json"
        assert other.headers["allow"] == "POST"


def _listed_resources(client: Client) -> Any:
    """Every page of resources/list, following next_cursor."""

    async def run() -> list[Any]:
        found: list[Any] = []
        cursor: str | None = None
        while True:
            page = await client.list_resources(cursor=cursor, cache_mode="bypass")
            found.extend(page.resources)
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    return run()


def test_resources_list_names_what_the_caller_may_read(keyed_server: Seeded) -> None:
    wonders = keyed_server.collections["wonders"]
    limited = _create_key(keyed_server, scope="read", collections=[wonders])

    async def scenario(client: Client) -> list[str]:
        resources = await _listed_resources(client)
        assert all(str(r.uri).startswith("ragd://documents/") for r in resources)
        assert all(r.mime_type == "text/markdown" and r.name for r in resources)
        first = await client.read_resource(str(resources[0].uri))
        assert first.contents[0].text  # type: ignore[union-attr]
        with pytest.raises(MCPError, match="cursor"):
            await client.list_resources(cursor="bm90IGEgY3Vyc29y", cache_mode="bypass")
        return sorted(str(r.uri).removeprefix("ragd://documents/") for r in resources)

    everything = sorted(d for ids in keyed_server.documents.values() for d in ids)
    admin = over_http(keyed_server.mcp_url, scenario, key=keyed_server.admin_key)
    assert admin == everything
    only_wonders = over_http(keyed_server.mcp_url, scenario, key=str(limited["key"]))
    assert only_wonders == sorted(keyed_server.documents["wonders"])
