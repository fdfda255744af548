"""Any OpenAI-compatible chat-completions server: OpenAI, Ollama, vLLM, llama.cpp server,
LM Studio (``POST {base_url}/chat/completions``)."""

from __future__ import annotations

from typing import Any, ClassVar

import openai

from ragd.generation.llm import ClientErrors, LLMConfig, Pieces, count_tokens, whole
from ragd.generation.reasoning import ScratchpadFilter

__all__ = ["OpenAIBackend"]


class OpenAIBackend:
    """The ``ChatBackend`` for the OpenAI chat-completions wire format."""

    name: ClassVar[str] = "openai"
    errors: ClassVar[ClientErrors] = ClientErrors.of(openai, openai.OpenAIError, lambda e: e.code)
    default_temperature = 0.1  # low: answers that keep to the sources

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self._client = openai.OpenAI(**config.client_options())
        temperature = config.temperature
        self._temperature = self.default_temperature if temperature is None else temperature

    def close(self) -> None:
        self._client.close()

    def check(self) -> None:
        self._client.with_options(**self.config.check_options()).models.list()

    def stream_chat(self, system: str, user: str, *, max_tokens: int, stream: bool) -> Pieces:
        reply = self._client.chat.completions.create(
            model=self.config.model,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            temperature=self._temperature,
            max_tokens=max_tokens,
            stream=stream,
        )
        if isinstance(reply, openai.Stream):
            return self._deltas(reply)
        self._count(reply.usage)
        content = reply.choices[0].message.content if reply.choices else None
        scratchpad = ScratchpadFilter()
        return whole(scratchpad.feed(content or "") + scratchpad.close())

    def _deltas(self, chunks: openai.Stream[Any]) -> Pieces:
        scratchpad = ScratchpadFilter()  # reasoning models' <think> notes are not answer
        with chunks:
            for chunk in chunks:
                self._count(getattr(chunk, "usage", None))
                delta = chunk.choices[0].delta.content if chunk.choices else None
                if delta and (text := scratchpad.feed(delta)):
                    yield text
        if tail := scratchpad.close():
            yield tail

    def _count(self, usage: Any) -> None:
        if usage is not None:
            count_tokens(self.config.model, "prompt", usage.prompt_tokens)
            count_tokens(self.config.model, "completion", usage.completion_tokens)
