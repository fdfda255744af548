"""Answer generation: a question plus numbered passages in, an answer citing them as [n] out."""

from ragd.generation.backends import BACKENDS, AnthropicBackend, OpenAIBackend
from ragd.generation.base import NO_ANSWER_TEXT, GeneratedAnswer, Generator, Passage, Turn
from ragd.generation.citations import CitationFilter, cited_numbers, extract_citations
from ragd.generation.extractive import ExtractiveGenerator
from ragd.generation.llm import ChatBackend, LLMConfig, LLMGenerator
from ragd.generation.prompts import answer_messages, load_prompt, render_sources

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
