"""Answers from any OpenAI-compatible chat-completions server.

That covers OpenAI, Ollama, vLLM, llama.cpp server and LM Studio. The official client
does the retrying (exponential backoff with jitter, honouring ``Retry-After``, on
connection errors, 408, 409, 429 and 5xx). Every client error becomes a
``GenerationError`` whose detail names only the kind of failure and the HTTP status:
never the API key, never the server's raw error text (which may echo the key).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from typing import Any

import openai
from openai.types.chat import ChatCompletionMessageParam

from ragd.errors import GenerationError
from ragd.generation.base import NO_ANSWER_TEXT, GeneratedAnswer, Passage, Turn
from ragd.generation.citations import CitationFilter
from ragd.generation.llm import cited_answer, count_tokens, observe
from ragd.generation.prompts import answer_messages, clean_rewrite, rewrite_messages

__all__ = ["OpenAICompatGenerator"]

CHECK_TIMEOUT_S = 3.0
REWRITE_MAX_TOKENS = 200
_SAFE_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
# Reasoning models served through compatible APIs may put their scratchpad in the answer.
_THINKING = re.compile(r"<think>.*?(?:</think>|\Z)\s*", re.DOTALL)


def _failure(exc: openai.OpenAIError, action: str = "LLM request failed") -> GenerationError:
    """A user-safe ``GenerationError`` for a client error (no key, no raw text)."""
    if isinstance(exc, openai.APITimeoutError):
        detail = "timed out"
    elif isinstance(exc, openai.APIConnectionError):
        detail = "could not connect"
    elif isinstance(exc, openai.APIStatusError):
        detail = f"HTTP {exc.status_code}"
        if exc.code and _SAFE_CODE.fullmatch(exc.code):
            detail += f" ({exc.code})"
    elif isinstance(exc, openai.APIResponseValidationError):
        detail = "unexpected response"
    else:
        detail = type(exc).__name__
    return GenerationError(f"{action}: {detail}")


def _count_usage(model: str, usage: Any) -> None:
    """Record the server's own token counts (``usage``), when it reports them."""
    if usage is not None:
        count_tokens(model, "prompt", usage.prompt_tokens)
        count_tokens(model, "completion", usage.completion_tokens)


class OpenAICompatGenerator:
    """A ``Generator`` backed by ``POST {base_url}/chat/completions``."""

    name: str = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None,
        timeout_s: float = 60.0,
        max_retries: int = 2,
        temperature: float = 0.1,
        max_tokens: int = 800,
        history_tokens: int = 2000,
    ) -> None:
        self.base_url = base_url
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.history_tokens = history_tokens
        self._check_timeout_s = min(timeout_s, CHECK_TIMEOUT_S)
        self._client = openai.OpenAI(
            base_url=base_url,
            # Local servers need no key, but the client insists on one.
            api_key=api_key or "not-needed",
            timeout=timeout_s,
            max_retries=max_retries,
        )

    def __repr__(self) -> str:
        return f"OpenAICompatGenerator(base_url={self.base_url!r}, model={self.model!r})"

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def check(self) -> None:
        """Raise ``GenerationError`` unless the server answers ``GET /models`` quickly."""
        client = self._client.with_options(timeout=self._check_timeout_s, max_retries=0)
        try:
            client.models.list()
        except openai.OpenAIError as exc:
            raise _failure(exc, "LLM check failed") from None

    def generate(
        self, question: str, passages: Sequence[Passage], *, instructions: str | None = None
    ) -> GeneratedAnswer:
        """Answer from ``passages``; ``instructions`` join the system message after the
        grounding rules (see ``answer_messages``)."""
        if not passages:
            return GeneratedAnswer(NO_ANSWER_TEXT, ())
        started = time.perf_counter()
        try:
            completion = self._client.chat.completions.create(
                model=self.model,
                messages=self._messages(question, passages, instructions),
                temperature=self.temperature,
                max_tokens=self.max_tokens,
            )
        except openai.OpenAIError as exc:
            observe("generate", "error", started)
            raise _failure(exc) from None
        observe("generate", "ok", started)
        _count_usage(self.model, completion.usage)
        if not completion.choices:
            raise GenerationError("LLM request failed: no answer in the response")
        raw = _THINKING.sub("", completion.choices[0].message.content or "").strip()
        if not raw:
            raise GenerationError("LLM request failed: empty answer")
        return cited_answer(raw, passages)

    def rewrite(self, history: Sequence[Turn], question: str) -> str:
        """``question`` rewritten to stand alone, given the conversation ``history``
        (trimmed to ``history_tokens``, oldest turns dropped first)."""
        system, user = rewrite_messages(history, question, self.history_tokens)
        started = time.perf_counter()
        try:
            completion = self._client.chat.completions.create(
                model=self.model,
                messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
                temperature=self.temperature,
                max_tokens=REWRITE_MAX_TOKENS,
            )
        except openai.OpenAIError as exc:
            observe("rewrite", "error", started)
            raise _failure(exc, "LLM rewrite failed") from None
        observe("rewrite", "ok", started)
        _count_usage(self.model, completion.usage)
        raw = completion.choices[0].message.content if completion.choices else None
        text = clean_rewrite(_THINKING.sub("", raw or ""))
        if not text:
            raise GenerationError("LLM rewrite failed: empty answer")
        return text

    def stream(
        self, question: str, passages: Sequence[Passage], *, instructions: str | None = None
    ) -> Iterator[str]:
        """Yield the answer as text deltas, invented citations already removed.

        Run ``extract_citations`` over the joined deltas to learn what the answer cites.
        """
        if not passages:
            yield NO_ANSWER_TEXT
            return
        started = time.perf_counter()
        try:
            response = self._client.chat.completions.create(
                model=self.model,
                messages=self._messages(question, passages, instructions),
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                stream=True,
            )
        except openai.OpenAIError as exc:
            observe("stream", "error", started)
            raise _failure(exc) from None
        citations = CitationFilter({p.n for p in passages})
        with response:
            chunks = iter(response)
            while True:
                try:
                    chunk = next(chunks)
                except StopIteration:
                    break
                except openai.OpenAIError as exc:
                    observe("stream", "error", started)
                    raise _failure(exc, "LLM stream failed") from None
                except Exception:  # transport errors mid-stream are not wrapped by the client
                    observe("stream", "error", started)
                    raise GenerationError("LLM stream failed: connection lost") from None
                _count_usage(self.model, getattr(chunk, "usage", None))
                delta = chunk.choices[0].delta.content if chunk.choices else None
                if delta and (text := citations.feed(delta)):
                    yield text
        observe("stream", "ok", started)
        if tail := citations.close():
            yield tail

    def _messages(
        self, question: str, passages: Sequence[Passage], instructions: str | None
    ) -> list[ChatCompletionMessageParam]:
        system, user = answer_messages(question, passages, instructions)
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]
