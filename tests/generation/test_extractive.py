from __future__ import annotations

import pytest

from ragd.generation import (
    NO_ANSWER_TEXT,
    ExtractiveGenerator,
    GeneratedAnswer,
    Generator,
    Passage,
    extract_citations,
)
from ragd.generation.extractive import content_terms, split_sentences


def _passage(
    n: int, text: str, title: str | None = None, headings: tuple[str, ...] = ()
) -> Passage:
    return Passage(n, f"chunk-{n}", f"doc-{n}", title, text, 1.0 / n, headings)


PARIS = _passage(
    1,
    "Paris is the capital and largest city of France. The Seine flows through the city. "
    "About two million people live in Paris.",
    title="Paris",
)
LYON = _passage(2, "Lyon is the third-largest city in France. It is known for its cuisine.")


def test_answers_with_the_best_sentence_and_cites_its_passage() -> None:
    answer = ExtractiveGenerator().generate("What is the capital of France?", [PARIS, LYON])
    assert answer.text.startswith("Paris is the capital and largest city of France [1].")
    assert answer.cited[0] == 1


def test_citation_numbers_come_from_the_passages() -> None:
    passages = [_passage(7, "Redis holds the rate-limit counters for every replica.")]
    answer = ExtractiveGenerator().generate("Where are rate-limit counters kept?", passages)
    assert answer == GeneratedAnswer(
        "Redis holds the rate-limit counters for every replica [7].", (7,)
    )


def test_every_sentence_ends_with_a_valid_marker_and_cited_is_first_cited_order() -> None:
    passages = [
        _passage(4, "Workers claim queued documents with a lease."),
        _passage(2, "A crashed worker's lease expires and its documents are claimed again."),
    ]
    answer = ExtractiveGenerator().generate("How do workers claim documents?", passages)
    text, cited = extract_citations(answer.text, {4, 2})
    assert text == answer.text
    assert cited == answer.cited
    assert set(cited) <= {2, 4}
    for sentence in answer.text.split(". "):
        assert sentence.rstrip(".").endswith(("[2]", "[4]"))


def test_no_passages_or_no_match_gives_the_no_answer_text() -> None:
    generator = ExtractiveGenerator()
    assert generator.generate("What is the capital of France?", []).text == NO_ANSWER_TEXT
    unrelated = generator.generate("How does quantum chromodynamics work?", [PARIS, LYON])
    assert (unrelated.text, unrelated.cited) == (NO_ANSWER_TEXT, ())
    only_stop_words = generator.generate("What is it?", [PARIS])
    assert (only_stop_words.text, only_stop_words.cited) == (NO_ANSWER_TEXT, ())


def test_min_overlap_is_the_share_of_question_words_covered() -> None:
    question = "Which river flows through the Paris region in northern France?"
    assert ExtractiveGenerator(min_overlap=0.2).generate(question, [PARIS]).cited == (1,)
    strict = ExtractiveGenerator(min_overlap=0.95).generate(question, [PARIS])
    assert strict.text == NO_ANSWER_TEXT


def test_max_sentences_limits_the_answer() -> None:
    text = (
        "The cache stores embeddings. The cache stores parsed pages. "
        "The cache stores search results. The cache stores rate-limit counters."
    )
    question = "What does the cache store?"
    two = ExtractiveGenerator(max_sentences=2).generate(question, [_passage(1, text)])
    assert two.text.count("[1]") == 2
    four = ExtractiveGenerator(max_sentences=4).generate(question, [_passage(1, text)])
    assert four.text.count("[1]") == 4


def test_near_duplicates_from_overlapping_chunks_appear_once() -> None:
    sentence = "Embeddings are cached by model and chunk hash."
    passages = [
        _passage(1, f"{sentence} Re-ingesting is cheap."),
        _passage(2, f"{sentence} Nothing else here."),
    ]
    answer = ExtractiveGenerator().generate("How are embeddings cached?", passages)
    assert answer.text.count("Embeddings are cached") == 1
    assert answer.cited[0] == 1  # the higher-ranked passage wins the tie


def test_rare_question_words_weigh_more_than_common_ones() -> None:
    passages = [
        _passage(1, "The server starts quickly on any laptop."),
        _passage(2, "The server logs every request it serves."),
        _passage(3, "By default the port is 8000 for the server."),
    ]
    answer = ExtractiveGenerator(max_sentences=1).generate(
        "Which port does the server use?", passages
    )
    assert answer.cited == (3,)


def test_light_stemming_matches_word_forms() -> None:
    passages = [_passage(1, "You install a plugin with one command.")]
    answer = ExtractiveGenerator().generate("Installing plugins?", passages)
    assert answer.cited == (1,)


def test_title_and_headings_count_as_context() -> None:
    passages = [
        _passage(1, "You configure the database with RAGD_DATABASE_URL.", title="Storage"),
        _passage(2, "You configure it with RAGD_LOG_LEVEL.", headings=("Operations", "Logging")),
    ]
    answer = ExtractiveGenerator(max_sentences=1).generate("How do I configure logging?", passages)
    assert answer.cited == (2,)


def test_footnotes_in_the_source_do_not_become_citations() -> None:
    passages = [_passage(1, "The tower was completed in 1889.[12] It is 330 metres tall.")]
    answer = ExtractiveGenerator(max_sentences=1).generate(
        "When was the tower completed?", passages
    )
    assert answer.text == "The tower was completed in 1889 [1]."


def test_is_deterministic() -> None:
    generator = ExtractiveGenerator()
    question = "Which city is known for cuisine in France?"
    first = generator.generate(question, [PARIS, LYON])
    assert all(generator.generate(question, [PARIS, LYON]) == first for _ in range(5))


def test_is_a_generator_that_needs_nothing() -> None:
    generator = ExtractiveGenerator()
    assert isinstance(generator, Generator)
    assert generator.name == "extractive"
    generator.check()
    question = "What is the capital of France?"
    assert (
        "".join(generator.stream(question, [PARIS])) == generator.generate(question, [PARIS]).text
    )


def test_instructions_are_ignored_without_a_model_to_follow_them() -> None:
    generator = ExtractiveGenerator()
    question = "What is the capital of France?"
    plain = generator.generate(question, [PARIS, LYON])
    assert generator.generate(question, [PARIS, LYON], instructions="Be funny.") == plain
    streamed = generator.stream(question, [PARIS, LYON], instructions="Be funny.")
    assert "".join(streamed) == plain.text


@pytest.mark.parametrize(("max_sentences", "min_overlap"), [(0, 0.2), (3, -0.1), (3, 1.5)])
def test_rejects_bad_settings(max_sentences: int, min_overlap: float) -> None:
    with pytest.raises(ValueError):
        ExtractiveGenerator(max_sentences=max_sentences, min_overlap=min_overlap)


def test_split_sentences_handles_abbreviations_lists_and_headings() -> None:
    text = (
        "# Heading\n"
        "Tools, e.g. Ollama, run locally. Dr. Smith agrees!\n"
        "A hard-wrapped line\ncontinues here.\n\n"
        "- first item\n"
        "2. second item\n\n"
        "Scraped text lost a space.Like here, but not in Node.js."
    )
    assert split_sentences(text) == [
        "Tools, e.g. Ollama, run locally.",
        "Dr. Smith agrees!",
        "A hard-wrapped line continues here.",
        "first item",
        "second item",
        "Scraped text lost a space.",
        "Like here, but not in Node.js.",
    ]


def test_content_terms_drop_stop_words_and_stem() -> None:
    assert content_terms("What are the embeddings of these files?") == ["embed", "fil"]
