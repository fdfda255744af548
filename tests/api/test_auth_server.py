"""``ragd serve`` as a real process: it refuses a public address without keys, starts
there when auth is disabled or RAGD_ADMIN_KEY is set, and never logs a key."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ragd.auth import generate_key, is_loopback
from tests.helpers import LiveServer, free_port, start_server, stop_server


def non_loopback_address() -> str | None:
    """An address of this machine that is not loopback, when it has one (no packet is
    sent: connecting a UDP socket only picks the outgoing interface)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            address: str = probe.getsockname()[0]
        except OSError:
            return None
    return None if is_loopback(address) or address == "0.0.0.0" else address


def wait_for_log(server: LiveServer, needle: str, timeout_s: float = 10) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        log = server.log()
        if needle in log:
            return log
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} not in the server log:\n{server.log()}")


def test_public_address_without_keys_refuses_to_start(tmp_path: Path) -> None:
    env = {**os.environ, "RAGD_DATA_DIR": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    env.pop("RAGD_AUTH_DISABLED", None)
    env.pop("RAGD_ADMIN_KEY", None)
    result = subprocess.run(
        [sys.executable, "-m", "ragd", "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    output = (result.stdout + result.stderr).decode()
    assert result.returncode != 0, output
    assert "refusing to listen on 0.0.0.0" in output
    assert "ragd keys create --name NAME --scope admin" in output
    assert "RAGD_AUTH_DISABLED=true" in output


def test_public_address_with_auth_disabled_starts_and_serves_everyone(tmp_path: Path) -> None:
    process, server = start_server(tmp_path, host="0.0.0.0", RAGD_AUTH_DISABLED="true")
    try:
        assert httpx.get(f"{server.base_url}/v1/collections", timeout=10).status_code == 200
        address = non_loopback_address()
        if address is not None:
            port = server.base_url.rsplit(":", 1)[1]
            remote = httpx.get(f"http://{address}:{port}/v1/collections", timeout=10)
            assert remote.status_code == 200
        assert "authentication is disabled" in server.log()
    finally:
        stop_server(process)


def test_admin_key_opens_a_public_address_and_no_key_is_ever_logged(tmp_path: Path) -> None:
    admin_prefix, admin_key = generate_key()
    process, server = start_server(tmp_path, host="0.0.0.0", RAGD_ADMIN_KEY=admin_key)
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            bearer = {"Authorization": f"Bearer {admin_key}"}
            assert http.get("/v1/collections").status_code == 401  # loopback needs a key now
            created = http.post("/v1/keys", json={"name": "app", "scope": "write"}, headers=bearer)
            assert created.status_code == 201, created.text
            app_key, app_prefix = created.json()["key"], created.json()["prefix"]
            header = {"X-API-Key": app_key}
            assert http.post("/v1/collections", json={"name": "kb"}, headers=header).is_success
            assert http.post("/v1/search", json={"query": "x"}, headers=header).is_success
            assert http.get("/v1/keys", headers=bearer).is_success
            wrong = {"X-API-Key": app_key[:-3] + "zzz"}
            assert http.get("/v1/collections", headers=wrong).status_code == 401
            assert http.get("/v1/keys", headers=header).status_code == 403
            address = non_loopback_address()
            if address is not None:
                remote = f"http://{address}:{server.base_url.rsplit(':', 1)[1]}/v1/collections"
                assert httpx.get(remote, timeout=10).status_code == 401
                assert httpx.get(remote, headers=header, timeout=10).status_code == 200
            last = http.get("/v1/collections", headers={**bearer, "X-Request-ID": "auth-last"})
            assert last.status_code == 200
        log = wait_for_log(server, "auth-last")
    finally:
        stop_server(process)
    log = server.log()
    for secret in (admin_key, app_key, admin_key.split("_", 2)[2], app_key.split("_", 2)[2]):
        assert secret not in log
    assert f'"key_prefix": "{admin_prefix}"' in log
    assert f'"key_prefix": "{app_prefix}"' in log
    assert "API keys required" in log


def test_loopback_name_without_keys_starts(tmp_path: Path) -> None:
    # 127.0.0.1 is what every other live-server test binds to.
    process, server = start_server(tmp_path, host="localhost")
    try:
        assert httpx.get(f"{server.base_url}/v1/collections", timeout=10).status_code == 200
        assert "serving loopback clients only" in server.log()
    finally:
        stop_server(process)
