"""The HTTP transport: the FastAPI app (:mod:`ragd.api.app`), routes, schemas, middleware.

Importing a submodule (``ragd.api.schemas``) must not build the whole app, so the app's
names are resolved lazily; ``ragd.api:create_app`` and ``ragd.api:create_app_from_env``
keep working for code written before the app moved to :mod:`ragd.api.app`.
"""

from typing import Any

_APP_NAMES = {"create_app", "create_app_from_env"}


def __getattr__(name: str) -> Any:
    if name in _APP_NAMES:
        from ragd.api import app

        return getattr(app, name)
    raise AttributeError(name)
