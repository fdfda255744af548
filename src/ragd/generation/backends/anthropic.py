"""Anthropic's Messages API (``POST {base_url}/v1/messages``)."""

from __future__ import annotations

from typing import Any, ClassVar

import anthropic

from ragd.generation.llm import ClientErrors, LLMConfig, Pieces, count_tokens, whole

__all__ = ["AnthropicBackend"]


def _error_type(exc: anthropic.APIStatusError) -> object:
    """The ``error.type`` of an Anthropic error body (``overloaded_error``, ...)."""
    error = exc.body.get("error") if isinstance(exc.body, dict) else None
    return error.get("type") if isinstance(error, dict) else None


class AnthropicBackend:
    """The ``ChatBackend`` for Anthropic's Messages API (529 ``overloaded`` is retried)."""

    name: ClassVar[str] = "anthropic"
    errors: ClassVar[ClientErrors] = ClientErrors.of(
        anthropic, anthropic.AnthropicError, _error_type
    )

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self._client = anthropic.Anthropic(**config.client_options())
        # The current client no longer types ``temperature``; send it only when asked for.
        temperature = config.temperature
        self._extra_body = None if temperature is None else {"temperature": temperature}

    def close(self) -> None:
        self._client.close()

    def check(self) -> None:
        self._client.with_options(**self.config.check_options()).models.list(limit=1)

    def stream_chat(self, system: str, user: str, *, max_tokens: int, stream: bool) -> Pieces:
        reply = self._client.messages.create(
            model=self.config.model,
            system=system,
            messages=[{"role": "user", "content": user}],
            max_tokens=max_tokens,
            extra_body=self._extra_body,
            stream=stream,
        )
        if isinstance(reply, anthropic.Stream):
            return self._deltas(reply)
        self._count("prompt", reply.usage.input_tokens)
        self._count("completion", reply.usage.output_tokens)
        return whole("".join(block.text for block in reply.content if block.type == "text"))

    def _deltas(self, events: anthropic.Stream[Any]) -> Pieces:
        with events:
            for event in events:
                if event.type == "message_start":
                    self._count("prompt", event.message.usage.input_tokens)
                elif event.type == "message_delta":
                    self._count("completion", event.usage.output_tokens)
                elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                    yield event.delta.text

    def _count(self, kind: str, used: object) -> None:
        count_tokens(self.config.model, kind, used)
