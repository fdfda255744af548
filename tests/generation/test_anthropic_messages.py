from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from ragd.config import Settings
from ragd.container import build_generator
from ragd.errors import GenerationError
from ragd.generation import (
    NO_ANSWER_TEXT,
    AnthropicBackend,
    GeneratedAnswer,
    Generator,
    LLMConfig,
    LLMGenerator,
    Passage,
    Turn,
)

from .fake_anthropic import FakeAnthropic, sent_key

KEY = "sk-ant-test-0123456789abcdef"
QUESTION = "What is the capital of France?"
PASSAGES = [
    Passage(1, "c1", "d1", "Paris guide", "Paris is the capital of France.", 0.9, ("Geo",)),
    Passage(2, "c2", "d2", None, "Lyon is known for its food.", 0.5),
]


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


def _generator(
    server: FakeAnthropic,
    *,
    api_key: str | None = KEY,
    max_retries: int = 2,
    temperature: float | None = None,
    max_tokens: int = 800,
) -> LLMGenerator:
    config = LLMConfig(
        server.base_url,
        "claude-test",
        api_key,
        timeout_s=5.0,
        max_retries=max_retries,
        temperature=temperature,
    )
    return LLMGenerator(AnthropicBackend(config), max_tokens=max_tokens)


def test_request_carries_model_system_prompt_sources_and_key(fake: FakeAnthropic) -> None:
    fake.reply("Paris is the capital of France [1].")
    answer = _generator(fake, max_tokens=123).generate(QUESTION, PASSAGES)

    assert answer == GeneratedAnswer("Paris is the capital of France [1].", (1,))
    (request,) = fake.message_requests
    assert request.method == "POST"
    assert sent_key(request.headers) == KEY
    assert "anthropic-version" in request.headers
    body = request.json
    assert body["model"] == "claude-test"
    assert body["max_tokens"] == 123
    assert not body.get("stream")
    assert NO_ANSWER_TEXT in body["system"]
    (user,) = body["messages"]
    assert user["role"] == "user"
    assert "[1] Paris guide — Geo\nParis is the capital of France." in user["content"]
    assert f"Question: {QUESTION}" in user["content"]


def test_instructions_join_the_system_prompt_after_the_rules(fake: FakeAnthropic) -> None:
    fake.reply("Paris [1].")
    fake.reply("Paris [1].")
    generator = _generator(fake)
    generator.generate(QUESTION, PASSAGES, instructions="Answer in French.")
    assert "".join(generator.stream(QUESTION, PASSAGES, instructions="Answer in French."))
    for request in fake.message_requests:
        system = request.json["system"]
        fenced = system.index("<instructions>\nAnswer in French.\n</instructions>")
        assert system.index(NO_ANSWER_TEXT) < fenced
        assert "Answer in French." not in request.json["messages"][0]["content"]


def test_temperature_is_sent_only_when_set(fake: FakeAnthropic) -> None:
    fake.reply("Paris [1].")
    fake.reply("Paris [1].")
    _generator(fake).generate(QUESTION, PASSAGES)
    _generator(fake, temperature=0.0).generate(QUESTION, PASSAGES)
    first, second = fake.message_requests
    assert "temperature" not in first.json
    assert second.json["temperature"] == 0.0


def test_citations_are_left_as_written_for_the_answer_service(fake: FakeAnthropic) -> None:
    # Which citations are real is AnswerService's decision (tests/services/test_answers.py).
    fake.reply("Paris is the capital [1][9]. Lyon has food [9] [2].")
    answer = _generator(fake).generate(QUESTION, PASSAGES)
    assert answer == GeneratedAnswer(
        "Paris is the capital [1][9]. Lyon has food [9] [2].", (1, 9, 2)
    )


def test_no_answer_reply_is_normalized(fake: FakeAnthropic) -> None:
    fake.reply(NO_ANSWER_TEXT.upper())
    assert _generator(fake).generate(QUESTION, PASSAGES) == GeneratedAnswer(NO_ANSWER_TEXT, ())


def test_no_passages_answers_without_calling_the_llm(fake: FakeAnthropic) -> None:
    assert _generator(fake).generate(QUESTION, []) == GeneratedAnswer(NO_ANSWER_TEXT, ())
    assert fake.requests == []


def test_server_error_is_retried_then_succeeds(fake: FakeAnthropic) -> None:
    fake.fail(500, retry_after=0.01)
    fake.reply("Paris [1].")
    assert _generator(fake).generate(QUESTION, PASSAGES).cited == (1,)
    assert len(fake.message_requests) == 2


def test_overloaded_retry_after_is_honoured(fake: FakeAnthropic) -> None:
    fake.fail(529, retry_after=0.4)
    fake.reply("Paris [1].")
    started = time.monotonic()
    assert _generator(fake).generate(QUESTION, PASSAGES).cited == (1,)
    assert time.monotonic() - started >= 0.4
    assert len(fake.message_requests) == 2


def test_rate_limit_is_retried(fake: FakeAnthropic) -> None:
    fake.fail(429, retry_after=0.01)
    fake.reply("Paris [1].")
    assert _generator(fake).generate(QUESTION, PASSAGES).cited == (1,)


def test_persistent_failure_raises_without_leaking_the_key(fake: FakeAnthropic) -> None:
    fake.fail(529, times=3, retry_after=0.01, message=f"overloaded for key {KEY}")
    with pytest.raises(GenerationError) as caught:
        _generator(fake, max_retries=2).generate(QUESTION, PASSAGES)
    assert caught.value.detail == "LLM request failed: HTTP 529 (overloaded_error)"
    assert KEY not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert len(fake.message_requests) == 3


def test_bad_key_is_not_retried_or_echoed() -> None:
    with FakeAnthropic(api_key="sk-ant-the-right-one") as server:
        with pytest.raises(GenerationError) as caught:
            _generator(server).generate(QUESTION, PASSAGES)
        assert caught.value.detail == "LLM request failed: HTTP 401 (authentication_error)"
        assert KEY not in str(caught.value)
        assert len(server.message_requests) == 1


def test_stream_yields_the_deltas_as_written(fake: FakeAnthropic) -> None:
    # Invented citations are removed by AnswerService (tests/services/test_answers.py).
    fake.reply(
        "Paris is the capital [1]. Big [9].",
        deltas=["Paris is", " the capital [", "1]. Big [", "9", "]."],
    )
    deltas = list(_generator(fake).stream(QUESTION, PASSAGES))
    assert len(deltas) > 1
    assert "".join(deltas) == "Paris is the capital [1]. Big [9]."
    assert fake.message_requests[0].json["stream"] is True


def test_stream_failure_raises_generation_error(fake: FakeAnthropic) -> None:
    fake.fail(503, times=3, retry_after=0.01)
    with pytest.raises(GenerationError, match=r"^LLM request failed: HTTP 503 \(api_error\)$"):
        list(_generator(fake).stream(QUESTION, PASSAGES))


def test_check_lists_models_with_the_key(fake: FakeAnthropic) -> None:
    _generator(fake).check()
    (request,) = fake.requests
    assert (request.method, request.path) == ("GET", "/v1/models")
    assert sent_key(request.headers) == KEY


def test_check_fails_when_the_server_is_down() -> None:
    with FakeAnthropic() as server:
        generator = _generator(server)
    started = time.monotonic()
    with pytest.raises(GenerationError, match=r"^LLM check failed: could not connect$"):
        generator.check()
    assert time.monotonic() - started < 3.5


def test_rewrite_sends_history_and_returns_the_question(fake: FakeAnthropic) -> None:
    fake.reply("When was the Old Bridge restored?")
    history = [Turn("user", "Tell me about the Old Bridge"), Turn("assistant", "It is old [1].")]
    rewritten = _generator(fake).rewrite(history, "and when was it restored?")
    assert rewritten == "When was the Old Bridge restored?"
    body = fake.message_requests[0].json
    assert "stand" in body["system"]
    assert "Old Bridge" in body["messages"][0]["content"]
    assert "and when was it restored?" in body["messages"][0]["content"]


def test_is_a_streaming_rewriting_generator_and_hides_the_key(fake: FakeAnthropic) -> None:
    generator = _generator(fake)
    assert isinstance(generator, Generator)
    assert generator.name == "anthropic"
    assert KEY not in repr(generator)
    generator.close()


def test_settings_choose_the_provider(fake: FakeAnthropic) -> None:
    settings = Settings(llm_provider="anthropic", llm_base_url=fake.base_url, llm_model="claude-x")
    generator = build_generator(settings)
    assert isinstance(generator, LLMGenerator)
    assert isinstance(generator.backend, AnthropicBackend)
    assert generator.model == "claude-x"
    assert build_generator(Settings()).name == "extractive"
