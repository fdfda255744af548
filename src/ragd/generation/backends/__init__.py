"""The chat backends an ``LLMGenerator`` can run on, by ``RAGD_LLM_PROVIDER`` name.

Adding a provider is one module here (client setup, one request, its stream events and
errors) and one row in ``BACKENDS``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ragd.generation.llm import ChatBackend, LLMConfig

if TYPE_CHECKING:
    from ragd.generation.backends.anthropic import AnthropicBackend
    from ragd.generation.backends.openai import OpenAIBackend

__all__ = ["BACKENDS", "AnthropicBackend", "Backend", "OpenAIBackend"]


@dataclass(frozen=True)
class Backend:
    """How to open a provider's backend, and whether it needs ``RAGD_LLM_BASE_URL``
    (without one, that provider means "no LLM configured")."""

    open: Callable[[LLMConfig], ChatBackend]
    needs_base_url: bool


# Each backend's module, imported only when its backend is opened or named: the client
# libraries cost ~55 MB (anthropic 42, openai 13) in a process that may use neither.
_MODULES = {"OpenAIBackend": "openai", "AnthropicBackend": "anthropic"}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _opener(name: str) -> Callable[[LLMConfig], ChatBackend]:
    def open_backend(config: LLMConfig) -> ChatBackend:
        backend: ChatBackend = __getattr__(name)(config)
        return backend

    return open_backend


BACKENDS: dict[str, Backend] = {
    # The default provider: an LLM only once a server is named.
    "openai": Backend(_opener("OpenAIBackend"), needs_base_url=True),
    # Anthropic's own API unless a base URL says otherwise.
    "anthropic": Backend(_opener("AnthropicBackend"), needs_base_url=False),
}
