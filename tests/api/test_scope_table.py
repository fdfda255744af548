"""The README's scope table is the app's: every route, and the key each one requires.

The scope of a route is whichever ``api.deps`` alias (``ReadKey``, ``WriteKey``,
``AdminKey``, ``KeyAdmin``) its dependencies contain, so a route that changes scope, or a
new route, fails here until the table says the same.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import Route

from ragd.api import deps
from ragd.api import routes as routes_package
from ragd.api.app import create_app
from ragd.config import load_settings

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| `(GET|POST|PATCH|PUT|DELETE) (\S+)` \| (.+?) \|$")
SCOPES: dict[Any, str] = {
    get_args(deps.ReadKey)[1].dependency: "`read`",
    get_args(deps.WriteKey)[1].dependency: "`write`",
    get_args(deps.AdminKey)[1].dependency: "`admin`",
    get_args(deps.KeyAdmin)[1].dependency: "`admin`, not limited to collections",
}


def _scopes(dependant: Dependant) -> set[str]:
    found: set[str] = set()
    for sub in dependant.dependencies:
        if sub.call in SCOPES:
            found.add(SCOPES[sub.call])
        found |= _scopes(sub)
    return found


def _route_scopes(tmp_path: Path) -> Iterator[tuple[str, str]]:
    for info in pkgutil.iter_modules(routes_package.__path__):
        router = importlib.import_module(f"{routes_package.__name__}.{info.name}").router
        for route in router.routes:
            assert isinstance(route, APIRoute)
            scopes = _scopes(route.dependant)
            assert len(scopes) <= 1, (route.path, scopes)
            for method in route.methods or ():
                yield f"{method} {route.path}", scopes.pop() if scopes else "`none`"
    # FastAPI's own pages (/openapi.json, /docs...) are plain routes of the app.
    app = create_app(load_settings(data_dir=tmp_path, inprocess_worker=False))
    for plain in app.routes:
        if isinstance(plain, Route) and not isinstance(plain, APIRoute):
            yield f"GET {plain.path}", "`none`"


def _readme_table() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("**Scope of every route.**", 1)[1].split("\n\n**", 1)[0]
    rows = [ROW.match(line) for line in section.splitlines()]
    table = {f"{m[1]} {m[2]}": m[3] for m in rows if m}
    assert len(table) == sum(1 for m in rows if m), "a route appears twice in the README"
    return table


def test_readme_scope_table_matches_the_routes(tmp_path: Path) -> None:
    actual = dict(_route_scopes(tmp_path))
    assert len(actual) > 30
    assert _readme_table() == actual


def test_read_keys_may_chat_by_decision(tmp_path: Path) -> None:
    """Chat sessions are the caller's own state (see the README): read scope, on purpose."""
    actual = dict(_route_scopes(tmp_path))
    assert actual["POST /v1/chat/sessions"] == "`read`"
    assert actual["DELETE /v1/chat/sessions/{session_id}"] == "`read`"
