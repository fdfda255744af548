"""A real website on 127.0.0.1 for synced-source tests: pages whose content a test
changes between syncs, with ETags and 304s as a real server sends them."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Site:
    """The pages (path -> (body, content type)) and what was asked of them."""

    base_url: str = ""
    pages: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # path, If-None-Match
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, path: str, body: str | bytes, content_type: str = "text/html") -> str:
        data = body.encode() if isinstance(body, str) else body
        with self.lock:
            self.pages[path] = (data, content_type)
        return self.base_url + path

    def remove(self, path: str) -> None:
        with self.lock:
            self.pages.pop(path, None)

    def url(self, path: str) -> str:
        return self.base_url + path

    def sitemap(self, path: str, page_paths: list[str]) -> str:
        entries = "".join(f"<url><loc>{self.url(p)}</loc></url>" for p in page_paths)
        return self.put(
            path,
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>',
            "application/xml",
        )

    def conditional_hits(self, path: str) -> int:
        """How many requests for ``path`` carried an If-None-Match."""
        with self.lock:
            return sum(1 for p, tag in self.requests if p == path and tag)


def page(title: str, text: str) -> str:
    head = f"<html><head><title>{title}</title></head>"
    return f"{head}<body><main><h1>{title}</h1><p>{text}</p></main></body></html>"


@contextmanager
def running_site() -> Iterator[Site]:
    site = Site()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            tag_sent = self.headers.get("If-None-Match")
            with site.lock:
                site.requests.append((self.path, tag_sent))
                found = site.pages.get(self.path)
            if found is None:
                self._send(404, b"missing", {})
                return
            body, content_type = found
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if tag_sent == etag:
                self._send(304, b"", {"ETag": etag})
                return
            self._send(200, body, {"ETag": etag, "Content-Type": content_type})

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    site.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
