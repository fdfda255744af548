"""The web page: ``GET /`` and its static assets under ``/ui/``, shipped in the package.

The page is plain HTML, CSS and JavaScript modules (no framework, no build step), one
more client of ``/v1``. Its files are read once from ``ragd/web`` and served from memory
with a strict Content-Security-Policy: scripts and styles from this origin only, no
inline code, no ``eval``, nothing fetched from elsewhere. ``SecurityHeadersMiddleware``
keeps a CSP a route sets and adds the other security headers.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from ragd.api.bodies import JsonBodyRoute
from ragd.errors import NotFound

# GET only, no body; the route class is every router's, so no route can miss the parser.
router = APIRouter(include_in_schema=False, route_class=JsonBodyRoute)

UI_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    media_type: str
    etag: str


@cache
def assets() -> dict[str, Asset]:
    """Every servable file by name; anything else is a 404, so no path reaches the disk."""
    found: dict[str, Asset] = {}
    for entry in resources.files("ragd").joinpath("web").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in _TYPES:
            body = entry.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            # Compressed once here: text assets shrink to about a third.
            packed = gzip.compress(body, compresslevel=9, mtime=0)
            found[entry.name] = Asset(body, packed, _TYPES[suffix], etag)
    return found


def _serve(name: str, request: Request) -> Response:
    asset = assets().get(name)
    if asset is None:
        raise NotFound(f"no page asset {name!r}")
    # Revalidated on every load (cheap 304s), so an upgraded server never mixes versions.
    headers = {
        "Content-Security-Policy": UI_CSP,
        "ETag": asset.etag,
        "Cache-Control": "no-cache",
        "Vary": "Accept-Encoding",
    }
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@router.get("/")
def index(request: Request) -> Response:
    return _serve("index.html", request)


@router.get("/ui")
def ui_root() -> RedirectResponse:
    return RedirectResponse("/", status_code=308)


@router.get("/ui/{name}")
def asset(name: str, request: Request) -> Response:
    return _serve(name, request)
