"""Filters and metadata stay within what every database stores: 422s, never a 500.

SQLite binds integers as signed 64-bit and refuses an SQL expression tree of ~1,000
terms, so a filter with a 21-digit integer or 1,000 keys used to be a 500 there.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from ragd.limits import CEILINGS
from tests.api.test_bad_input_api import assert_problem, new_collection

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
FILTERED = ["/v1/search", "/v1/ask"]


def _body(path: str, filters: dict[str, Any]) -> dict[str, Any]:
    field = "query" if path == "/v1/search" else "question"
    return {field: "leave", "filters": filters}


@pytest.fixture
def seeded(client: TestClient) -> TestClient:
    cid = new_collection(client)
    url = f"/v1/collections/{cid}/documents"
    document = {"text": "Leave is thirty days.", "metadata": {"team": INT64_MAX}}
    assert client.post(url, json=document).status_code == 202
    return client


@pytest.mark.parametrize("path", FILTERED)
@pytest.mark.parametrize("value", [INT64_MAX + 1, INT64_MIN - 1, 100000000000000000000])
def test_filter_integer_beyond_64_bits_is_422(seeded: TestClient, path: str, value: int) -> None:
    body = assert_problem(seeded.post(path, json=_body(path, {"team": value})), 422)
    assert "integer" in str(body["detail"])


@pytest.mark.parametrize("path", FILTERED)
@pytest.mark.parametrize("value", [INT64_MAX, INT64_MIN, 0])
def test_filter_integer_at_64_bits_is_served(seeded: TestClient, path: str, value: int) -> None:
    assert seeded.post(path, json=_body(path, {"team": value})).status_code == 200


@pytest.mark.parametrize("value", [INT64_MAX + 1, INT64_MIN - 1])
def test_metadata_integer_beyond_64_bits_is_422(client: TestClient, value: int) -> None:
    cid = new_collection(client)
    url = f"/v1/collections/{cid}/documents"
    text = {"text": "hello", "metadata": {"n": value}}
    assert_problem(client.post(url, json=text), 422)
    upload = {"metadata": f'{{"n": {value}}}'}
    files = {"file": ("a.txt", b"hello there", "text/plain")}
    assert_problem(client.post(url, data=upload, files=files), 422)
    assert client.get(url).json()["documents"] == []
    edge = {"text": "hello", "metadata": {"n": INT64_MIN if value < 0 else INT64_MAX}}
    assert client.post(url, json=edge).status_code == 202


@pytest.mark.parametrize("path", FILTERED)
def test_filter_key_count_is_bounded(seeded: TestClient, path: str) -> None:
    at = {f"k{i}": "v" for i in range(CEILINGS.filter_keys)}
    assert seeded.post(path, json=_body(path, at)).status_code == 200
    past = {f"k{i}": "v" for i in range(CEILINGS.filter_keys + 1)}
    assert_problem(seeded.post(path, json=_body(path, past)), 422)
    thousand = {f"k{i}": i for i in range(1000)}
    assert_problem(seeded.post(path, json=_body(path, thousand)), 422)


@pytest.mark.parametrize("path", FILTERED)
def test_filter_key_length_is_bounded(seeded: TestClient, path: str) -> None:
    at = {"k" * CEILINGS.filter_key_chars: "v"}
    assert seeded.post(path, json=_body(path, at)).status_code == 200
    past = {"k" * (CEILINGS.filter_key_chars + 1): "v"}
    assert_problem(seeded.post(path, json=_body(path, past)), 422)
    assert_problem(seeded.post(path, json=_body(path, {"": "v"})), 422)
