"""``ragd mcp`` as a real subprocess, driven by the MCP SDK's own stdio client, on a data
directory the CLI filled: the tools, the document resource, tool errors, and a key's
collection limit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from mcp import Client, MCPError
from typer.testing import CliRunner

from ragd.cli.app import app
from tests.mcp.corpus import CORPUS
from tests.mcp.sdk import over_stdio, structured, text_of

runner = CliRunner()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A data directory with the two collections, ingested by ``ragd ingest``."""
    root = tmp_path_factory.mktemp("mcp-stdio")
    env = {"RAGD_DATA_DIR": str(root / "data"), "HF_HUB_OFFLINE": "1"}
    for collection, files in CORPUS.items():
        folder = root / collection
        folder.mkdir()
        for name, text in files.items():
            (folder / name).write_text(text)
        result = runner.invoke(app, ["ingest", str(folder), "-c", collection], env=env)
        assert result.exit_code == 0, result.output
    return env


def _read_key(env: dict[str, str], collection: str) -> str:
    result = runner.invoke(
        app,
        ["keys", "create", "--name", "mcp", "--scope", "read", "-c", collection, "--json"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    key: str = json.loads(result.output)["key"]
    return key


def test_tools_search_ask_and_documents(env: dict[str, str]) -> None:
    async def scenario(client: Client) -> None:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(tools) == {"search", "ask", "list_collections", "get_document"}
        for tool in tools.values():
            assert tool.annotations is not None and tool.annotations.read_only_hint
            assert tool.output_schema is not None
        assert tools["search"].input_schema["required"] == ["query"]

        listed = structured(await client.call_tool("list_collections", {}))
        counts = {c["name"]: c["document_count"] for c in listed["collections"]}
        assert counts == {"wonders": 2, "drinks": 1}

        found = await client.call_tool(
            "search", {"query": "earthquakes damaged the lighthouse", "top_k": 3}
        )
        hits = structured(found)["results"]
        assert hits[0]["title"] == "Lighthouse of Alexandria"
        assert [h["n"] for h in hits] == list(range(1, len(hits) + 1))
        assert "Earthquakes between 956 and 1323 AD" in text_of(found)
        keyword = structured(
            await client.call_tool(
                "search", {"query": "espresso", "mode": "keyword", "collections": ["drinks"]}
            )
        )["results"]
        assert [h["title"] for h in keyword] == ["Espresso"]

        answered = await client.call_tool("ask", {"question": "How tall was the lighthouse?"})
        answer = structured(answered)
        assert "100 metres" in answer["answer"]
        first = answer["citations"][0]
        assert f"[{first['n']}]" in answer["answer"]
        assert first["title"] == "Lighthouse of Alexandria"
        assert first["chunk_id"] and "100 metres" in first["snippet"]
        assert first["resource_uri"] == f"ragd://documents/{first['document_id']}"
        assert "Sources:" in text_of(answered)
        assert first["document_id"] in text_of(answered)

        got = await client.call_tool(
            "get_document", {"id": first["document_id"], "include_chunks": True}
        )
        document = structured(got)
        assert document["status"] == "ready" and document["source"] == "lighthouse.md"
        assert "100 metres" in document["excerpt"] and not document["truncated"]
        assert document["chunks"][0]["text"] in document["excerpt"]
        short = structured(
            await client.call_tool("get_document", {"id": first["document_id"], "max_chars": 60})
        )
        assert short["truncated"] and len(short["excerpt"]) <= 62
        assert short["chunks"] is None

        read = await client.read_resource(first["resource_uri"])
        text = read.contents[0].text  # type: ignore[union-attr]
        assert text.startswith("# Lighthouse of Alexandria\n\nThe Lighthouse")
        assert "## Destruction" in text and "abandoned ruin." in text
        templates = (await client.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["ragd://documents/{document_id}"]

    over_stdio(env, scenario)


def test_errors_are_readable_tool_errors(env: dict[str, str]) -> None:
    async def scenario(client: Client) -> None:
        calls: list[tuple[str, dict[str, Any], str]] = [
            ("search", {"query": "x", "collections": ["nope"]}, "collection 'nope' not found"),
            ("search", {"query": "   "}, "query must not be empty"),
            ("search", {"query": "x", "top_k": 0}, "top_k"),
            ("search", {"query": "x", "mode": "fuzzy"}, "mode"),
            ("search", {"query": "x", "filters": {"a": [1]}}, "filters"),
            ("ask", {"question": "why?", "top_k": 50}, "top_k must be between 1 and 20"),
            ("get_document", {"id": "doc_missing"}, "document 'doc_missing' not found"),
            ("get_document", {}, "id"),
        ]
        for name, arguments, needle in calls:
            result = await client.call_tool(name, arguments)
            message = text_of(result)
            assert result.is_error, (name, arguments, message)
            assert needle in message, message
            assert "Traceback" not in message
        with pytest.raises(MCPError, match="document 'doc_missing' not found"):
            await client.read_resource("ragd://documents/doc_missing")

    over_stdio(env, scenario)


def test_a_key_limits_stdio_to_its_collections(env: dict[str, str]) -> None:
    key = _read_key(env, "wonders")
    searched = runner.invoke(app, ["search", "coffee", "-c", "drinks", "--json"], env=env)
    assert searched.exit_code == 0, searched.output
    drinks_docs = [hit["document_id"] for hit in json.loads(searched.output)]
    assert drinks_docs

    async def scenario(client: Client) -> None:
        listed = structured(await client.call_tool("list_collections", {}))
        assert [c["name"] for c in listed["collections"]] == ["wonders"]
        hits = structured(await client.call_tool("search", {"query": "espresso coffee"}))
        assert hits["results"]
        assert not set(drinks_docs) & {h["document_id"] for h in hits["results"]}
        refused = await client.call_tool("search", {"query": "coffee", "collections": ["drinks"]})
        assert refused.is_error and "collection 'drinks' not found" in text_of(refused)
        hidden = await client.call_tool("get_document", {"id": drinks_docs[0]})
        assert hidden.is_error and "not found" in text_of(hidden)
        with pytest.raises(MCPError, match="not found"):
            await client.read_resource(f"ragd://documents/{drinks_docs[0]}")

    over_stdio({**env, "RAGD_MCP_KEY": key}, scenario)


def test_an_invalid_key_stops_the_command_with_a_message(env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ragd", "mcp", "--key", "rgd_abcd_" + "x" * 40],
        env={**os.environ, **env},
        input=b"",
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == b""  # stdout is the protocol's: nothing else goes there
    assert b"the API key is not valid" in result.stderr
    assert b"Traceback" not in result.stderr


def test_nothing_but_protocol_reaches_stdout(env: dict[str, str]) -> None:
    """An MCP client reads stdout as JSON-RPC: one log line there breaks it."""
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"},
        },
    }
    result = subprocess.run(
        [sys.executable, "-m", "ragd", "mcp"],
        env={**os.environ, **env, "RAGD_LOG_LEVEL": "DEBUG"},
        input=(json.dumps(initialize) + "\n").encode(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    lines = result.stdout.decode().splitlines()
    assert lines, result.stderr.decode()
    replies = [json.loads(line) for line in lines]
    assert replies[0]["id"] == 1
    assert replies[0]["result"]["serverInfo"]["name"] == "ragd"
