"""The web page's weight and time to interactive, in Debian's Chromium against a real
``ragd serve`` on this machine.

Transfer size: every response the page loads on a cold visit (HTML, CSS, JS modules and
the first API calls), headers included, as Chromium counts them. Time to interactive:
from navigation start to the page's own ``ragd:interactive`` mark, set once the
collections are drawn and every control is wired. Each visit is a fresh browser context
(empty cache); the server holds ``--collections`` collections with a document each.

    python benchmarks/web_page.py [--visits N] [--collections N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Response, sync_playwright

from live_server import start_server

CHROMIUM = os.environ.get("RAGD_TEST_CHROMIUM", "/usr/bin/chromium")
# A function, not a string predicate: the page's CSP (rightly) forbids string eval.
WAIT_INTERACTIVE = """() => new Promise((resolve) => {
    const seen = () => performance.getEntriesByName('ragd:interactive').length > 0;
    if (seen()) return resolve();
    new PerformanceObserver((list, observer) => {
        if (seen()) { observer.disconnect(); resolve(); }
    }).observe({ type: 'mark', buffered: true });
})"""


def seed(base: str, collections: int) -> None:
    with httpx.Client(base_url=base, timeout=30) as http:
        for n in range(collections):
            cid = http.post("/v1/collections", json={"name": f"bench-{n}"}).json()["id"]
            text = f"# Note {n}\n\nA short note number {n} for the page benchmark."
            http.post(f"/v1/collections/{cid}/documents", json={"text": text})


def visit(browser: Any, base: str) -> dict[str, float]:
    context = browser.new_context()
    page = context.new_page()
    responses: list[Response] = []
    page.on("response", lambda response: responses.append(response))
    page.goto(base + "/")
    page.evaluate(WAIT_INTERACTIVE)
    timings = page.evaluate(
        """() => {
            const nav = performance.getEntriesByType('navigation')[0];
            return {
                interactive_ms: performance.getEntriesByName('ragd:interactive')[0].startTime,
                dom_content_loaded_ms: nav.domContentLoadedEventEnd,
            };
        }"""
    )
    page.wait_for_load_state("networkidle")
    assets = body = headers = 0
    for response in responses:
        sizes = response.request.sizes()
        body += sizes["responseBodySize"]
        headers += sizes["responseHeadersSize"]
        if "/ui/" in response.url or response.url.rstrip("/") == base:
            assets += sizes["responseBodySize"]
    context.close()
    return {
        **timings,
        "requests": len(responses),
        "transfer_bytes": body + headers,
        "asset_body_bytes": assets,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visits", type=int, default=10)
    parser.add_argument("--collections", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        process, base = start_server(Path(tmp), ready_timeout_s=120)
        try:
            seed(base, args.collections)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
                visit(browser, base)  # warm the server, not the browser: contexts are fresh
                runs = [visit(browser, base) for _ in range(args.visits)]
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=30)
    result = {
        "visits": args.visits,
        "requests": runs[0]["requests"],
        "transfer_kib": round(runs[0]["transfer_bytes"] / 1024, 1),
        "asset_body_kib": round(runs[0]["asset_body_bytes"] / 1024, 1),
        "interactive_ms_median": round(statistics.median(r["interactive_ms"] for r in runs), 1),
        "interactive_ms_max": round(max(r["interactive_ms"] for r in runs), 1),
        "dom_content_loaded_ms_median": round(
            statistics.median(r["dom_content_loaded_ms"] for r in runs), 1
        ),
    }
    if args.json:
        print(json.dumps(result))
        return
    for name, value in result.items():
        print(f"{name:30} {value}")


if __name__ == "__main__":
    main()
