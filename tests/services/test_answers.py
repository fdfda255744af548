"""AnswerService alone decides which citations are real, for every generator.

The generator tests show that generators hand over citations as the model wrote them;
here the service drops the invented ones, whole and streamed, over a real LLM generator
talking HTTP to a protocol-level fake of each provider's API.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ragd.config import load_settings
from ragd.container import Container
from ragd.embedding import LocalEmbedder
from ragd.generation import ExtractiveGenerator, Passage
from ragd.generation.backends import BACKENDS
from ragd.services.answers import AnswerCitations, AnswerDelta, AnswerService
from tests.generation.fake_anthropic import FakeAnthropic
from tests.generation.fake_openai import FakeOpenAI

QUESTION = "What is the capital of France?"
PASSAGES = [
    Passage(1, "c1", "d1", "Paris guide", "Paris is the capital of France.", 0.9, ("Geo",)),
    Passage(2, "c2", "d2", None, "Lyon is known for its food.", 0.5),
]

FakeServer = FakeOpenAI | FakeAnthropic


@pytest.fixture(params=sorted(BACKENDS))
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fake(provider: str) -> Iterator[FakeServer]:
    server: FakeServer = FakeAnthropic() if provider == "anthropic" else FakeOpenAI()
    with server:
        yield server


@pytest.fixture
def answers(
    tmp_path: Path, embedder: LocalEmbedder, provider: str, fake: FakeServer
) -> Iterator[AnswerService]:
    """The container's AnswerService, its generator an LLM at ``fake``."""
    settings = load_settings(
        data_dir=tmp_path,
        inprocess_worker=False,
        llm_provider=provider,
        llm_base_url=fake.base_url,
        llm_model="test-model",
        llm_max_retries=0,
        log_format="json",
    )
    container = Container(settings, embedder=embedder)
    assert container.answers.generator.name == provider
    yield container.answers
    container.close()


def _chat_requests(fake: FakeServer) -> int:
    return len(fake.message_requests if isinstance(fake, FakeAnthropic) else fake.chat_requests)


def test_invented_citations_are_removed(answers: AnswerService, fake: FakeServer) -> None:
    fake.reply("Paris is the capital [1][9]. Lyon has food [9] [2].")
    result = answers.answer(QUESTION, PASSAGES)
    assert result.answer == "Paris is the capital [1]. Lyon has food [2]."
    assert [(c.n, c.chunk_id) for c in result.citations] == [(1, "c1"), (2, "c2")]
    assert _chat_requests(fake) == 1


def test_answer_citing_nothing_valid_is_kept_uncited(
    answers: AnswerService, fake: FakeServer
) -> None:
    fake.reply("Paris, probably [9].")
    result = answers.answer(QUESTION, PASSAGES)
    assert (result.answer, result.citations) == ("Paris, probably.", [])


def test_stream_yields_deltas_with_invented_citations_removed(
    answers: AnswerService, fake: FakeServer
) -> None:
    fake.reply(
        "Paris is the capital [1]. Big [9].",
        deltas=["Paris is", " the capital [", "1]. Big [", "9", "]."],
    )
    *deltas, last = list(answers.answer_stream(QUESTION, PASSAGES))
    assert all(isinstance(d, AnswerDelta) for d in deltas)
    assert len(deltas) > 1
    assert "".join(d.text for d in deltas if isinstance(d, AnswerDelta)) == (
        "Paris is the capital [1]. Big."
    )
    assert isinstance(last, AnswerCitations)
    assert [c.n for c in last.citations] == [1]


def test_whole_and_streamed_answers_agree_for_the_extractive_generator(
    answers: AnswerService,
) -> None:
    extractive = AnswerService(answers.search_service, ExtractiveGenerator())
    whole = extractive.answer(QUESTION, PASSAGES)
    *deltas, last = list(extractive.answer_stream(QUESTION, PASSAGES))
    assert "".join(d.text for d in deltas if isinstance(d, AnswerDelta)) == whole.answer
    assert isinstance(last, AnswerCitations)
    assert last.citations == whole.citations == [whole.citations[0]]
    assert whole.citations[0].n == 1
