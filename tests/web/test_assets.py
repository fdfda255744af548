"""How the page is served: headers, assets, and what its code may not do."""

from __future__ import annotations

import re
from importlib import resources

import httpx

from tests.helpers import LiveServer

WEB = resources.files("ragd").joinpath("web")


def test_page_has_strict_csp_and_security_headers(open_server: LiveServer) -> None:
    response = httpx.get(open_server.base_url + "/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "x-request-id" in response.headers


def test_assets_are_served_with_types_and_etags(open_server: LiveServer) -> None:
    with httpx.Client(base_url=open_server.base_url) as http:
        script = http.get("/ui/app.js")
        assert script.headers["content-type"].startswith("text/javascript")
        assert "script-src 'self'" in script.headers["content-security-policy"]
        again = http.get("/ui/app.js", headers={"If-None-Match": script.headers["etag"]})
        assert again.status_code == 304
        assert script.headers["content-encoding"] == "gzip"  # httpx asks for it and inflates
        assert "performance.mark" in script.text
        plain = http.get("/ui/app.js", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.text == script.text
        assert http.get("/ui/style.css").headers["content-type"].startswith("text/css")
        missing = http.get("/ui/nothing.js")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert http.get("/ui/..%2Fapi%2Fapp.py").status_code == 404
        assert http.get("/ui", follow_redirects=False).headers["location"] == "/"


def test_every_referenced_asset_exists() -> None:
    names = {entry.name for entry in WEB.iterdir()}
    html = WEB.joinpath("index.html").read_text()
    referenced = set(re.findall(r'(?:src|href)="/ui/([^"]+)"', html))
    for script in (n for n in names if n.endswith(".js")):
        referenced |= set(re.findall(r'from "\./([^"]+)"', WEB.joinpath(script).read_text()))
    assert referenced and referenced <= names


def test_code_never_turns_text_into_html_or_leaves_the_machine() -> None:
    """The page renders untrusted text with textContent only and loads nothing remote."""
    forbidden = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|"
        r"https?://(?!…)"
    )
    for entry in WEB.iterdir():
        if entry.name.endswith((".js", ".css", ".html")):
            found = forbidden.findall(entry.read_text())
            assert found == [], f"{entry.name}: {found}"
    html = WEB.joinpath("index.html").read_text()
    assert "<script>" not in html  # no inline script: only <script src=...>
    assert re.findall(r"\s(?:on[a-z]+|style)=", html) == []  # no inline handlers or styles
