from __future__ import annotations

import time
from types import GeneratorType

import pytest

from ragd.errors import GenerationError, Unavailable
from ragd.generation import (
    NO_ANSWER_TEXT,
    GeneratedAnswer,
    Generator,
    LLMConfig,
    LLMGenerator,
    OpenAIBackend,
    Passage,
    Turn,
)

from .fake_openai import FakeOpenAI

KEY = "sk-test-0123456789abcdef"
QUESTION = "What is the capital of France?"
PASSAGES = [
    Passage(
        1, "c1", "d1", "Paris guide", "Paris is the capital of France.", 0.9, ("Geo", "Cities")
    ),
    Passage(2, "c2", "d2", None, "Lyon is known for its food.", 0.5),
]


def _generator(
    server: FakeOpenAI,
    *,
    api_key: str | None = KEY,
    timeout_s: float = 5.0,
    max_retries: int = 2,
    temperature: float = 0.1,
    max_tokens: int = 800,
) -> LLMGenerator:
    config = LLMConfig(
        server.base_url,
        "test-model",
        api_key,
        timeout_s=timeout_s,
        max_retries=max_retries,
        temperature=temperature,
    )
    return LLMGenerator(OpenAIBackend(config), max_tokens=max_tokens)


def test_request_carries_model_prompts_sources_and_key(fake_llm: FakeOpenAI) -> None:
    fake_llm.reply("Paris is the capital of France [1].")
    answer = _generator(fake_llm, temperature=0.0, max_tokens=123).generate(QUESTION, PASSAGES)

    assert answer == GeneratedAnswer("Paris is the capital of France [1].", (1,))
    (request,) = fake_llm.chat_requests
    assert request.method == "POST"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    body = request.json
    assert body["model"] == "test-model"
    assert body["temperature"] == 0.0
    assert body["max_tokens"] == 123
    assert not body.get("stream")
    system, user = body["messages"]
    assert system["role"] == "system"
    assert NO_ANSWER_TEXT in system["content"]
    assert "[1]" in system["content"]
    assert user["role"] == "user"
    assert "[1] Paris guide — Geo > Cities\nParis is the capital of France." in user["content"]
    assert "[2] Untitled\nLyon is known for its food." in user["content"]
    assert f"Question: {QUESTION}" in user["content"]


def test_instructions_join_the_system_message_after_the_rules(fake_llm: FakeOpenAI) -> None:
    fake_llm.reply("Paris [1].")
    fake_llm.reply("Paris [1].")
    generator = _generator(fake_llm)
    generator.generate(QUESTION, PASSAGES, instructions="Answer in French.")
    assert "".join(generator.stream(QUESTION, PASSAGES, instructions="Answer in French."))
    for request in fake_llm.chat_requests:
        system, user = request.json["messages"]
        rules_end = system["content"].index(NO_ANSWER_TEXT)
        fenced = system["content"].index("<instructions>\nAnswer in French.\n</instructions>")
        assert rules_end < fenced
        assert "Answer in French." not in user["content"]


def test_citations_are_left_as_written_for_the_answer_service(fake_llm: FakeOpenAI) -> None:
    # Which citations are real is AnswerService's decision (tests/services/test_answers.py).
    fake_llm.reply("Paris is the capital [1][9]. Lyon has food [9] [2].")
    answer = _generator(fake_llm).generate(QUESTION, PASSAGES)
    assert answer == GeneratedAnswer(
        "Paris is the capital [1][9]. Lyon has food [9] [2].", (1, 9, 2)
    )


def test_no_answer_reply_is_normalized(fake_llm: FakeOpenAI) -> None:
    fake_llm.reply(f"{NO_ANSWER_TEXT.upper().rstrip('.')} [1]")
    answer = _generator(fake_llm).generate(QUESTION, PASSAGES)
    assert answer == GeneratedAnswer(NO_ANSWER_TEXT, ())


def test_reasoning_scratchpad_is_stripped(fake_llm: FakeOpenAI) -> None:
    fake_llm.reply("<think>The user wants [9].</think>\n\nParis [1].")
    answer = _generator(fake_llm).generate(QUESTION, PASSAGES)
    assert answer == GeneratedAnswer("Paris [1].", (1,))


def test_no_passages_answers_without_calling_the_llm(fake_llm: FakeOpenAI) -> None:
    generator = _generator(fake_llm)
    assert generator.generate(QUESTION, []) == GeneratedAnswer(NO_ANSWER_TEXT, ())
    assert list(generator.stream(QUESTION, [])) == [NO_ANSWER_TEXT]
    assert fake_llm.requests == []


def test_server_error_is_retried(fake_llm: FakeOpenAI) -> None:
    fake_llm.fail(500, retry_after=0.01)
    fake_llm.reply("Paris [1].")
    answer = _generator(fake_llm).generate(QUESTION, PASSAGES)
    assert answer.cited == (1,)
    assert len(fake_llm.chat_requests) == 2


def test_retry_after_is_honoured(fake_llm: FakeOpenAI) -> None:
    fake_llm.fail(429, retry_after=0.4, code="rate_limit_exceeded")
    fake_llm.reply("Paris [1].")
    started = time.monotonic()
    answer = _generator(fake_llm).generate(QUESTION, PASSAGES)
    assert answer.cited == (1,)
    assert time.monotonic() - started >= 0.4


def test_persistent_server_error_raises_without_leaking_the_key(fake_llm: FakeOpenAI) -> None:
    fake_llm.fail(500, times=3, retry_after=0.01, message=f"boom for key {KEY}")
    with pytest.raises(GenerationError) as caught:
        _generator(fake_llm, max_retries=2).generate(QUESTION, PASSAGES)
    assert caught.value.detail == "LLM request failed: HTTP 500"
    assert KEY not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert isinstance(caught.value, Unavailable)
    assert len(fake_llm.chat_requests) == 3


def test_bad_key_is_not_retried_or_echoed() -> None:
    with FakeOpenAI(api_key="sk-the-right-one") as server:
        with pytest.raises(GenerationError) as caught:
            _generator(server).generate(QUESTION, PASSAGES)
        assert caught.value.detail == "LLM request failed: HTTP 401 (invalid_api_key)"
        assert KEY not in str(caught.value)
        assert len(server.chat_requests) == 1


def test_slow_server_times_out(fake_llm: FakeOpenAI) -> None:
    fake_llm.reply("Too late [1].", delay_s=2.0)
    generator = _generator(fake_llm, timeout_s=0.3, max_retries=0)
    with pytest.raises(GenerationError, match=r"^LLM request failed: timed out$"):
        generator.generate(QUESTION, PASSAGES)


def test_check_passes_against_a_live_server(fake_llm: FakeOpenAI) -> None:
    _generator(fake_llm).check()
    (request,) = fake_llm.requests
    assert (request.method, request.path) == ("GET", "/v1/models")
    assert request.headers["authorization"] == f"Bearer {KEY}"


def test_check_fails_when_the_server_is_down() -> None:
    with FakeOpenAI() as server:
        generator = _generator(server)
    started = time.monotonic()
    with pytest.raises(GenerationError, match=r"^LLM check failed: could not connect$"):
        generator.check()
    assert time.monotonic() - started < 3.5  # short timeout, no retries


def test_check_fails_with_a_bad_key() -> None:
    with (
        FakeOpenAI(api_key="sk-the-right-one") as server,
        pytest.raises(GenerationError, match=r"HTTP 401"),
    ):
        _generator(server).check()


def test_missing_key_sends_a_placeholder(fake_llm: FakeOpenAI) -> None:
    fake_llm.reply("Paris [1].")
    _generator(fake_llm, api_key=None).generate(QUESTION, PASSAGES)
    assert fake_llm.chat_requests[0].headers["authorization"] == "Bearer not-needed"


def test_stream_yields_the_deltas_as_written(fake_llm: FakeOpenAI) -> None:
    # Invented citations are removed by AnswerService (tests/services/test_answers.py).
    fake_llm.reply(
        "Paris is the capital [1]. Big [9].",
        deltas=["Paris is", " the capital [", "1]. Big [", "9", "]."],
    )
    deltas = list(_generator(fake_llm).stream(QUESTION, PASSAGES))
    assert len(deltas) > 1
    assert "".join(deltas) == "Paris is the capital [1]. Big [9]."
    assert fake_llm.chat_requests[0].json["stream"] is True


def test_stream_drops_a_scratchpad_split_across_deltas(fake_llm: FakeOpenAI) -> None:
    fake_llm.reply(
        "<think>The user wants [9].</think>\n\nParis [1].",
        deltas=["<thi", "nk>The user", " wants [9].</th", "ink>\n", "\nParis", " [1]."],
    )
    assert "".join(_generator(fake_llm).stream(QUESTION, PASSAGES)) == "Paris [1]."


def test_closing_the_stream_early_cuts_off_the_server_response(fake_llm: FakeOpenAI) -> None:
    deltas = [f"w{i} " for i in range(10)]
    fake_llm.reply("".join(deltas), deltas=deltas, delta_delay_s=0.05)
    fake_llm.reply("".join(deltas), deltas=deltas)
    generator = _generator(fake_llm)

    stream = generator.stream(QUESTION, PASSAGES)
    assert isinstance(stream, GeneratorType)
    assert next(stream).strip() == "w0"
    stream.close()  # what ragd does when its own client hangs up
    early = fake_llm.wait_for_stream(0, timeout_s=2)
    assert early.cut_off and not early.completed and early.sent < len(deltas)

    assert "".join(generator.stream(QUESTION, PASSAGES)) == "".join(deltas)
    full = fake_llm.wait_for_stream(1, timeout_s=2)
    assert full.completed and not full.cut_off and full.sent == len(deltas)


def test_stream_failure_raises_generation_error(fake_llm: FakeOpenAI) -> None:
    fake_llm.fail(503, times=3, retry_after=0.01)
    with pytest.raises(GenerationError, match=r"^LLM request failed: HTTP 503$"):
        list(_generator(fake_llm).stream(QUESTION, PASSAGES))


def test_is_a_streaming_generator_and_hides_the_key(fake_llm: FakeOpenAI) -> None:
    generator = _generator(fake_llm)
    assert isinstance(generator, Generator)
    assert generator.name == "openai"
    assert KEY not in repr(generator)
    generator.close()


def test_rewrite_trims_history_to_the_token_budget_oldest_first(fake_llm: FakeOpenAI) -> None:
    history = [
        Turn("user", "OLDEST " + "a" * 60),
        Turn("assistant", "OLDER " + "b" * 60),
        Turn("user", "RECENT " + "c" * 30),
        Turn("assistant", "LATEST " + "d" * 30),
    ]
    fake_llm.reply('"When was the bridge restored?"')
    config = LLMConfig(fake_llm.base_url, "test-model", KEY)
    generator = LLMGenerator(OpenAIBackend(config), history_tokens=25)
    assert generator.rewrite(history, "and when?") == "When was the bridge restored?"
    (request,) = fake_llm.chat_requests
    user = request.json["messages"][1]["content"]
    assert "RECENT" in user and "LATEST" in user  # 2 x ~37 chars fit 25 tokens (~100 chars)
    assert "OLDEST" not in user and "OLDER" not in user
    assert "and when?" in user
    assert request.json["max_tokens"] <= 200


def test_rewrite_failure_is_a_generation_error(fake_llm: FakeOpenAI) -> None:
    fake_llm.fail(500, times=3, retry_after=0.01, message=f"boom {KEY}")
    with pytest.raises(GenerationError, match=r"^LLM rewrite failed: HTTP 500$") as caught:
        _generator(fake_llm).rewrite([Turn("user", "Tell me about X")], "and it?")
    assert KEY not in str(caught.value)
