"""Tests for ragd.ingest.fetch: URL checks, address checks, and a real local HTTP server."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ragd.errors import FetchError, InvalidInput, PayloadTooLarge, TransientError, UnsafeURL
from ragd.ingest.fetch import (
    DEFAULT_USER_AGENT,
    FetchedResource,
    Validators,
    check_url,
    fetch_url,
    resolve_public_addresses,
)

BIG = b"x" * 10_000
SLOW_SECONDS = 1.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return

    def handle(self) -> None:
        # The client hangs up early on purpose (size cap, timeout); that is no server error.
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            super().handle()

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str, status: int = 302) -> None:
        self._send(status, headers={"Location": location})

    def do_GET(self) -> None:
        path = self.path
        if path == "/docs/report%20v2.txt":
            self._send(200, b"hello world", {"Content-Type": "Text/Plain; charset=utf-8"})
        elif path == "/dir/":
            self._send(200, b"<p>index</p>", {"Content-Type": "text/html"})
        elif path == "/echo":
            body = f"{self.headers['Host']}|{self.headers['User-Agent']}".encode()
            self._send(200, body)
        elif path == "/missing":
            self._send(404, b"not found")
        elif path == "/gone":
            self._send(410)
        elif path == "/forbidden":
            self._send(403)
        elif path == "/busy":
            self._send(429)
        elif path == "/unavailable":
            self._send(503, b"try later")
        elif path == "/big":
            self._send(200, BIG, {"Content-Type": "application/octet-stream"})
        elif path == "/big-chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(10):
                chunk = b"y" * 1000
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif path.startswith("/hops/"):
            remaining = int(path.rsplit("/", 1)[1])
            if remaining == 0:
                self._redirect("/docs/report%20v2.txt", 301)
            else:
                # Alternate relative and absolute Location headers.
                if remaining % 2:
                    self._redirect(f"{remaining - 1}", 307)
                else:
                    self._redirect(f"http://{self.headers['Host']}/hops/{remaining - 1}")
        elif path == "/loop":
            self._redirect("/loop")
        elif path == "/to-metadata":
            self._redirect("http://169.254.169.254/latest/meta-data/")
        elif path == "/to-file":
            self._redirect("file:///etc/passwd")
        elif path == "/to-credentials":
            self._redirect("http://user:secret@example.com/")
        elif path == "/no-location":
            self._send(302)
        elif path == "/validated":
            validators = {"ETag": '"v1"', "Last-Modified": "Wed, 01 Jan 2025 00:00:00 GMT"}
            if self.headers.get("If-None-Match") == '"v1"':
                self._send(304, headers={"ETag": '"v1"'})
            else:
                seen = self.headers.get("If-Modified-Since") or "-"
                self._send(200, f"fresh {seen}".encode(), validators)
        elif path == "/slow":
            time.sleep(SLOW_SECONDS)
            self._send(200, b"late")
        else:
            self._send(404)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _fetch(
    url: str,
    *,
    allow_private: bool = True,
    max_bytes: int = 1_000_000,
    timeout_s: float = 5.0,
    max_redirects: int = 5,
    user_agent: str = DEFAULT_USER_AGENT,
    allow_networks: Sequence[str] = (),
) -> FetchedResource:
    return fetch_url(
        url,
        allow_private=allow_private,
        max_bytes=max_bytes,
        timeout_s=timeout_s,
        max_redirects=max_redirects,
        user_agent=user_agent,
        allow_networks=allow_networks,
    )


# --------------------------------------------------------------------------- check_url


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/a/b.pdf?x=1#frag",
        "http://example.com",
        "HTTP://Example.COM:8080/",
        "http://[2606:4700::1111]:443/",
        "http://bücher.de/",
        "http://93.184.216.34/",
    ],
)
def test_check_url_accepts_ordinary_urls(url: str) -> None:
    assert check_url(url, allow_private=False) == url


def test_check_url_strips_surrounding_whitespace() -> None:
    assert check_url("  https://example.com/ \n", allow_private=False) == "https://example.com/"


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("file:///etc/passwd", "http and https"),
        ("gopher://example.com:70/_x", "http and https"),
        ("ftp://example.com/file", "http and https"),
        ("javascript:alert(1)", "http and https"),
        ("example.com/path", "http"),
        ("http://", "no host"),
        ("http:///path", "no host"),
        ("https://:443/", "no host"),
        ("", "empty"),
        ("http://example.com:0/", "port"),
        ("http://example.com:70000/", "port"),
        ("http://exa mple.com/", "whitespace"),
        ("http://example.com/\r\nHost: evil", "whitespace"),
        ("http://%6c%6fcalhost/", "hostname"),
        ("http://[::1/", "malformed"),
    ],
)
def test_check_url_refusals(url: str, fragment: str) -> None:
    with pytest.raises(UnsafeURL) as caught:
        check_url(url, allow_private=True)
    assert fragment in caught.value.detail


@pytest.mark.parametrize(
    "url",
    [
        "http://user:hunter2@example.com/",
        "http://user@example.com/",
        "https://:hunter2@example.com/",
        "http://@example.com/",
        "http://example.com\\@evil.test/",
    ],
)
def test_check_url_refuses_credentials_without_echoing_them(url: str) -> None:
    with pytest.raises(UnsafeURL) as caught:
        check_url(url, allow_private=True)
    assert caught.value.detail == "URLs with credentials (user:password@) are not allowed"


def test_check_url_length_limit() -> None:
    url = "https://example.com/" + "a" * 1980
    assert len(url) == 2000
    assert check_url(url, allow_private=False) == url
    with pytest.raises(UnsafeURL, match="longer than 2000"):
        check_url(url + "a", allow_private=False)
    with pytest.raises(UnsafeURL, match="longer than 30"):
        check_url("https://example.com/abcdefghijk", allow_private=False, max_length=30)


def test_unsafe_url_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        check_url("file:///etc/passwd", allow_private=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://[::1]/",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0x7f.1/",
        "http://017700000001/",
        "http://[::ffff:127.0.0.1]/",
    ],
)
def test_check_url_refuses_private_ip_literals(url: str) -> None:
    with pytest.raises(UnsafeURL, match="not a public address"):
        check_url(url, allow_private=False)
    assert check_url(url, allow_private=True) == url


# --------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.1.2.3",
        "localhost",
        "::1",
        "[::1]",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "::",
        "[::ffff:127.0.0.1]",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "2130706433",
        "0x7f000001",
        "0x7f.1",
        "017700000001",
        "100.64.0.1",
        "224.0.0.1",
        "255.255.255.255",
        "240.0.0.1",
        "198.18.0.1",
        "192.0.2.1",
        "fc00::1",
        "fd00:ec2::254",
        "fe80::1",
        "fec0::1",
        "ff02::1",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::1",
        "2002:7f00:1::1",
        "2001:db8::1",
        "::7f00:1",
    ],
)
def test_resolve_refuses_non_public_addresses(host: str) -> None:
    with pytest.raises(UnsafeURL, match="non-public"):
        resolve_public_addresses(host, 80, allow_private=False)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("8.8.8.8", "8.8.8.8"),
        ("93.184.216.34", "93.184.216.34"),
        ("2606:4700:4700::1111", "2606:4700:4700::1111"),
        ("::ffff:8.8.8.8", "::ffff:8.8.8.8"),
        ("64:ff9b::808:808", "64:ff9b::808:808"),
    ],
)
def test_resolve_accepts_public_literals(host: str, expected: str) -> None:
    assert resolve_public_addresses(host, 443, allow_private=False) == [expected]


def test_resolve_allow_private_skips_checks() -> None:
    assert resolve_public_addresses("127.0.0.1", 80, allow_private=True) == ["127.0.0.1"]
    assert resolve_public_addresses("2130706433", 80, allow_private=True) == ["127.0.0.1"]


def test_resolve_allow_networks_exempts_only_those_networks() -> None:
    allowed = ["127.0.0.0/8"]
    assert resolve_public_addresses(
        "127.0.0.1", 80, allow_private=False, allow_networks=allowed
    ) == ["127.0.0.1"]
    with pytest.raises(UnsafeURL):
        resolve_public_addresses("169.254.169.254", 80, allow_private=False, allow_networks=allowed)


def test_resolve_failure_is_fetch_error() -> None:
    with pytest.raises(FetchError, match=r"could not resolve host nonexistent\.invalid"):
        resolve_public_addresses("nonexistent.invalid", 80, allow_private=False)


# --------------------------------------------------------------------------- fetch_url


def test_fetch_success_with_content_type_and_filename(base_url: str) -> None:
    resource = _fetch(f"{base_url}/docs/report%20v2.txt")
    assert resource == FetchedResource(
        url=f"{base_url}/docs/report%20v2.txt",
        content=b"hello world",
        content_type="text/plain",
        filename="report v2.txt",
    )


def test_fetch_returns_validators_and_honours_a_conditional_request(base_url: str) -> None:
    first = _fetch(f"{base_url}/validated")
    assert (first.etag, first.last_modified) == ('"v1"', "Wed, 01 Jan 2025 00:00:00 GMT")
    assert first.content == b"fresh -" and not first.not_modified

    again = fetch_url(
        f"{base_url}/validated",
        allow_private=True,
        max_bytes=1000,
        validators=Validators(etag=first.etag, last_modified=first.last_modified),
    )
    assert again.not_modified and again.content == b"" and again.etag == '"v1"'


def test_fetch_sends_if_modified_since_and_drops_unsafe_validators(base_url: str) -> None:
    dated = fetch_url(
        f"{base_url}/validated",
        allow_private=True,
        max_bytes=1000,
        validators=Validators(etag='"old"\r\nX-Evil: 1', last_modified="Tue, 02 Jan 2024"),
    )
    # The ETag with a line break is never sent; the date is, and the server saw it.
    assert dated.content == b"fresh Tue, 02 Jan 2024" and not dated.not_modified


def test_fetch_directory_has_no_filename(base_url: str) -> None:
    resource = _fetch(f"{base_url}/dir/")
    assert resource.filename is None
    assert resource.content_type == "text/html"


def test_fetch_sends_original_host_and_user_agent_over_pinned_address(base_url: str) -> None:
    port = base_url.rsplit(":", 1)[1]
    resource = _fetch(f"http://localhost:{port}/echo", user_agent="ragd-test/1")
    assert resource.content == f"localhost:{port}|ragd-test/1".encode()
    assert resource.url == f"http://localhost:{port}/echo"


@pytest.mark.parametrize("path", ["/missing", "/gone", "/forbidden"])
def test_fetch_client_errors_are_permanent(base_url: str, path: str) -> None:
    with pytest.raises(FetchError) as caught:
        _fetch(base_url + path)
    assert caught.value.detail.startswith("URL returned HTTP 4")
    assert not isinstance(caught.value, TransientError)


def test_fetch_404_message(base_url: str) -> None:
    with pytest.raises(FetchError, match=r"^URL returned HTTP 404$"):
        _fetch(f"{base_url}/missing")


def test_fetch_503_is_transient(base_url: str) -> None:
    with pytest.raises(TransientError, match=r"^URL returned HTTP 503$"):
        _fetch(f"{base_url}/unavailable")


def test_fetch_429_is_transient(base_url: str) -> None:
    with pytest.raises(TransientError, match=r"^URL returned HTTP 429$"):
        _fetch(f"{base_url}/busy")


def test_fetch_body_at_limit_is_accepted(base_url: str) -> None:
    assert _fetch(f"{base_url}/big", max_bytes=len(BIG)).content == BIG


def test_fetch_refuses_declared_content_length_over_limit(base_url: str) -> None:
    with pytest.raises(PayloadTooLarge, match="larger than 9999 bytes"):
        _fetch(f"{base_url}/big", max_bytes=len(BIG) - 1)


def test_fetch_refuses_streamed_body_over_limit(base_url: str) -> None:
    assert len(_fetch(f"{base_url}/big-chunked").content) == 10_000
    with pytest.raises(PayloadTooLarge, match="larger than 2500 bytes"):
        _fetch(f"{base_url}/big-chunked", max_bytes=2500)


def test_fetch_follows_redirect_chain(base_url: str) -> None:
    resource = _fetch(f"{base_url}/hops/4", max_redirects=5)
    assert resource.content == b"hello world"
    assert resource.url == f"{base_url}/docs/report%20v2.txt"
    assert resource.filename == "report v2.txt"


def test_fetch_too_many_redirects(base_url: str) -> None:
    with pytest.raises(FetchError, match="too many redirects"):
        _fetch(f"{base_url}/hops/4", max_redirects=4)


def test_fetch_redirect_loop(base_url: str) -> None:
    with pytest.raises(FetchError, match="too many redirects"):
        _fetch(f"{base_url}/loop")


def test_fetch_redirect_without_location(base_url: str) -> None:
    with pytest.raises(FetchError, match="HTTP 302 without a Location"):
        _fetch(f"{base_url}/no-location")


def test_fetch_redirect_to_file_scheme_is_unsafe(base_url: str) -> None:
    with pytest.raises(UnsafeURL, match="http and https"):
        _fetch(f"{base_url}/to-file")


def test_fetch_redirect_to_credentials_is_unsafe(base_url: str) -> None:
    with pytest.raises(UnsafeURL) as caught:
        _fetch(f"{base_url}/to-credentials")
    assert "secret" not in caught.value.detail


def test_fetch_local_server_refused_without_allow_private(base_url: str) -> None:
    with pytest.raises(UnsafeURL):
        _fetch(f"{base_url}/docs/report%20v2.txt", allow_private=False)
    port = base_url.rsplit(":", 1)[1]
    with pytest.raises(UnsafeURL):
        _fetch(f"http://localhost:{port}/docs/report%20v2.txt", allow_private=False)


def test_fetch_redirect_to_metadata_refused_after_allowed_first_hop(base_url: str) -> None:
    # The first hop is allowed through an explicit network exemption (not allow_private);
    # the redirect to the cloud metadata address must be refused by the per-hop check.
    allowed = ["127.0.0.0/8"]
    resource = _fetch(
        f"{base_url}/docs/report%20v2.txt", allow_private=False, allow_networks=allowed
    )
    assert resource.content == b"hello world"
    with pytest.raises(UnsafeURL, match=r"169\.254\.169\.254"):
        _fetch(f"{base_url}/to-metadata", allow_private=False, allow_networks=allowed)


def test_fetch_timeout_is_transient(base_url: str) -> None:
    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        _fetch(f"{base_url}/slow", timeout_s=0.3)
    assert caught.value.detail == "timed out fetching URL"
    assert time.monotonic() - started < SLOW_SECONDS


def test_fetch_connection_refused_is_transient() -> None:
    # Grab a free port, then close it so nothing listens there.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransientError) as caught:
        _fetch(f"http://127.0.0.1:{port}/")
    assert caught.value.detail == "could not connect to 127.0.0.1"


def test_fetch_unresolvable_host_is_fetch_error() -> None:
    with pytest.raises(FetchError, match="could not resolve host"):
        _fetch("http://nonexistent.invalid/")


# --------------------------------------------------------------------------- TLS pinning


class _TLSServer(ThreadingHTTPServer):
    """Wraps each accepted socket; the handshake runs in the handler thread."""

    daemon_threads = True
    context: ssl.SSLContext

    def get_request(self) -> tuple[socket.socket, object]:
        sock, address = super().get_request()
        wrapped = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return wrapped, address


class _TLSHandler(_Handler):
    def handle(self) -> None:
        with contextlib.suppress(ssl.SSLError, ConnectionResetError, BrokenPipeError):
            super().handle()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
def test_https_pinned_request_sends_sni_and_verifies_hostname(tmp_path: Path) -> None:
    # A self-signed certificate for "localhost": the fetch connects to the checked IP
    # (127.0.0.1), yet SNI must name the host, and verification must run (and fail here,
    # since the certificate is not trusted) rather than be skipped for an IP URL.
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-nodes", "-days", "1",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", str(key), "-out", str(cert),
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server_names: list[str | None] = []

    def remember_sni(_sock: object, name: str | None, _ctx: object) -> None:
        server_names.append(name)

    context.sni_callback = remember_sni
    server = _TLSServer(("127.0.0.1", 0), _TLSHandler)
    server.context = context
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        with pytest.raises(FetchError, match="TLS certificate verification failed for localhost"):
            _fetch(f"https://localhost:{port}/docs/report%20v2.txt")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert server_names[:1] == ["localhost"]
