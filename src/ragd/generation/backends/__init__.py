"""The chat backends an ``LLMGenerator`` can run on, by ``RAGD_LLM_PROVIDER`` name.

Adding a provider is one module here (client setup, one request, its stream events and
errors) and one row in ``BACKENDS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ragd.generation.backends.anthropic import AnthropicBackend
from ragd.generation.backends.openai import OpenAIBackend
from ragd.generation.llm import ChatBackend, LLMConfig

__all__ = ["BACKENDS", "AnthropicBackend", "Backend", "OpenAIBackend"]


@dataclass(frozen=True)
class Backend:
    """How to open a provider's backend, and whether it needs ``RAGD_LLM_BASE_URL``
    (without one, that provider means "no LLM configured")."""

    open: Callable[[LLMConfig], ChatBackend]
    needs_base_url: bool


BACKENDS: dict[str, Backend] = {
    # The default provider: an LLM only once a server is named.
    "openai": Backend(OpenAIBackend, needs_base_url=True),
    # Anthropic's own API unless a base URL says otherwise.
    "anthropic": Backend(AnthropicBackend, needs_base_url=False),
}
