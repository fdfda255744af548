"""Answer generation: a question plus numbered passages in, an answer citing them as [n] out."""

from ragd.generation.backends.anthropic import AnthropicGenerator
from ragd.generation.backends.openai import OpenAICompatGenerator
from ragd.generation.base import (
    NO_ANSWER_TEXT,
    GeneratedAnswer,
    Generator,
    Passage,
    Rewriter,
    StreamingGenerator,
    Turn,
)
from ragd.generation.citations import CitationFilter, extract_citations
from ragd.generation.extractive import ExtractiveGenerator
from ragd.generation.prompts import answer_messages, load_prompt, render_sources

__all__ = [
    "NO_ANSWER_TEXT",
    "AnthropicGenerator",
    "CitationFilter",
    "ExtractiveGenerator",
    "GeneratedAnswer",
    "Generator",
    "OpenAICompatGenerator",
    "Passage",
    "Rewriter",
    "StreamingGenerator",
    "Turn",
    "answer_messages",
    "extract_citations",
    "load_prompt",
    "render_sources",
]
