"""Answer generation: a question plus numbered passages in, an answer citing them as [n] out."""

from typing import TYPE_CHECKING, Any

from ragd.generation import backends
from ragd.generation.backends import BACKENDS
from ragd.generation.base import NO_ANSWER_TEXT, GeneratedAnswer, Generator, Passage, Turn
from ragd.generation.citations import CitationFilter, cited_numbers, extract_citations
from ragd.generation.extractive import ExtractiveGenerator
from ragd.generation.llm import ChatBackend, LLMConfig, LLMGenerator
from ragd.generation.prompts import answer_messages, load_prompt, render_sources

if TYPE_CHECKING:
    from ragd.generation.backends import AnthropicBackend, OpenAIBackend


def __getattr__(name: str) -> Any:
    """The backend classes, imported with their client library on first use."""
    if name in ("AnthropicBackend", "OpenAIBackend"):
        return getattr(backends, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BACKENDS",
    "NO_ANSWER_TEXT",
    "AnthropicBackend",
    "ChatBackend",
    "CitationFilter",
    "ExtractiveGenerator",
    "GeneratedAnswer",
    "Generator",
    "LLMConfig",
    "LLMGenerator",
    "OpenAIBackend",
    "Passage",
    "Turn",
    "answer_messages",
    "cited_numbers",
    "extract_citations",
    "load_prompt",
    "render_sources",
]
