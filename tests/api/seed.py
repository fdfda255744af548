"""Two small collections shared by the chat and OpenAI-compatible endpoint tests."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import Drain

BRIDGE = (
    "# Tower Bridge\n\nTower Bridge was completed in 1894. "
    "Tower Bridge was restored in 2008 with new paint."
)
LIGHTHOUSE = (
    "# Lighthouse\n\nThe Lighthouse of Alexandria was about 100 metres tall. "
    "The lighthouse was never restored after the earthquakes."
)


def seed(client: TestClient, drain: Drain) -> dict[str, str]:
    """Collections ``bridges`` and ``lights``, one ready document each; name → id."""
    ids = {}
    for name, text in (("bridges", BRIDGE), ("lights", LIGHTHOUSE)):
        cid = client.post("/v1/collections", json={"name": name}).json()["id"]
        client.post(f"/v1/collections/{cid}/documents", json={"text": text, "title": name})
        ids[name] = cid
    drain()
    return ids
