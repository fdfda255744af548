"""Tests for ragd.ingest.chunking: token estimate, structure, budget, overlap, speed."""

from __future__ import annotations

import itertools
import random

import pytest

from ragd.errors import ParseError
from ragd.ingest.chunking import Chunk, chunk_document, count_tokens, iter_headings

WORDS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "internationalization")


def sentences(count: int, seed: int = 0, words: int = 12) -> str:
    rng = random.Random(seed)
    return " ".join(
        " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "." for _ in range(count)
    )


def text_start(chunk: Chunk) -> int:
    """Where the chunk's text (overlap included) begins in the chunked text."""
    return chunk.char_end - len(chunk.text)


def assert_well_formed(text: str, chunks: list[Chunk], max_tokens: int) -> None:
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    previous_end = 0
    for chunk in chunks:
        assert chunk.text.strip()
        assert chunk.token_count == count_tokens(chunk.text) <= max_tokens
        assert text[text_start(chunk) : chunk.char_end] == chunk.text
        assert text_start(chunk) <= chunk.char_start < chunk.char_end
        assert chunk.char_start >= previous_end  # new material is in order, never repeated
        previous_end = chunk.char_end


# --- count_tokens ----------------------------------------------------------------------


def test_count_tokens_counts_words_and_punctuation() -> None:
    assert count_tokens("Hello, world!") == 4
    assert count_tokens("") == 0
    assert count_tokens("  \n\t ") == 0


def test_count_tokens_charges_extra_for_long_words() -> None:
    assert count_tokens("cat") == 1
    assert count_tokens("internationalization") == 1 + 20 // 6


def test_count_tokens_splits_numbers_and_underscores() -> None:
    assert count_tokens("7") == 1
    assert count_tokens("12345") == 1 + 4 // 2
    assert count_tokens("snake_case") == 3
    assert count_tokens("abc12") == 2


def test_count_tokens_counts_cjk_characters_one_each() -> None:
    assert count_tokens("\u4e2d\u6587\u6587\u672c") == 4


def test_count_tokens_is_additive_across_whitespace() -> None:
    left, right = "Don't panic: 42 internationalization!", "\u4e2d\u6587 ok."
    assert count_tokens(f"{left} \n{right}") == count_tokens(left) + count_tokens(right)


# --- structure -------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t\n"])
def test_empty_text_gives_no_chunks(text: str) -> None:
    assert chunk_document(text) == []


def test_short_text_without_headings_is_one_chunk() -> None:
    text = "First paragraph.\n\nSecond paragraph."
    assert chunk_document(text) == [Chunk(0, text, (), 0, len(text), count_tokens(text))]


def test_nested_heading_paths() -> None:
    text = (
        "Preamble.\n\n# A\n\nText a.\n\n## B\n\nText b.\n\n### C\n\nText c.\n\n"
        "## D\n\nText d.\n\n# E #\n\nText e."
    )
    chunks = chunk_document(text)
    assert [(c.heading_path, c.text) for c in chunks] == [
        ((), "Preamble."),
        (("A",), "Text a."),
        (("A", "B"), "Text b."),
        (("A", "B", "C"), "Text c."),
        (("A", "D"), "Text d."),
        (("E",), "Text e."),
    ]
    assert_well_formed(text, chunks, 200)


def test_heading_text_is_kept_only_for_sections_without_body() -> None:
    text = "# Guide\n## Install\nRun it.\n## Changelog\n# Appendix"
    chunks = chunk_document(text)
    assert [(c.heading_path, c.text) for c in chunks] == [
        (("Guide", "Install"), "Run it."),
        (("Guide", "Changelog"), "Changelog"),
        (("Appendix",), "Appendix"),
    ]
    changelog = chunks[1]
    assert text[changelog.char_start : changelog.char_end] == "Changelog"


def test_hash_lines_in_code_fences_are_not_headings() -> None:
    text = "# Real\n\n```bash\n# just a comment\n\necho hi\n```\n\n~~~\n## nope\n~~~"
    assert [h.text for h in iter_headings(text)] == ["Real"]
    chunks = chunk_document(text)
    assert len(chunks) == 1
    assert chunks[0].heading_path == ("Real",)
    assert "# just a comment" in chunks[0].text


def test_code_block_is_kept_together_when_it_fits() -> None:
    code = "```python\ndef f(x):\n    return x + 1\n\n\nprint(f(2))\n```"
    text = f"{sentences(3)}\n\n{code}\n\n{sentences(3, seed=1)}"
    chunks = chunk_document(text, max_tokens=60, overlap_tokens=8)
    assert sum(code in c.text for c in chunks) == 1
    assert_well_formed(text, chunks, 60)


def test_loose_list_is_kept_together_when_it_fits() -> None:
    items = "- first item\n- second item\n\n- third item\n  continued\n\n1. numbered"
    text = f"{sentences(4)}\n\n{items}\n\n{sentences(4, seed=2)}"
    chunks = chunk_document(text, max_tokens=60, overlap_tokens=8)
    assert sum(items in c.text for c in chunks) == 1


def test_chunking_is_deterministic() -> None:
    text = "# T\n\n" + sentences(200)
    assert chunk_document(text, max_tokens=50) == chunk_document(text, max_tokens=50)


@pytest.mark.parametrize(("max_tokens", "overlap_tokens"), [(0, 0), (10, 10), (10, -1)])
def test_invalid_budgets_are_rejected(max_tokens: int, overlap_tokens: int) -> None:
    with pytest.raises(ValueError):
        chunk_document("text", max_tokens=max_tokens, overlap_tokens=overlap_tokens)


# --- budget and overlap ----------------------------------------------------------------


def test_budget_is_respected_across_a_long_document() -> None:
    parts = []
    for index in range(30):
        parts.append(f"{'#' * (index % 3 + 1)} Section {index}")
        parts.append(sentences(index % 7 + 1, seed=index))
        parts.append(sentences(40, seed=100 + index))  # one paragraph over the budget
    text = "\n\n".join(parts)
    chunks = chunk_document(text, max_tokens=80, overlap_tokens=16)
    assert len(chunks) > 60
    assert_well_formed(text, chunks, 80)


def test_consecutive_chunks_in_a_section_overlap() -> None:
    text = "# Only\n\n" + sentences(60, words=8)
    chunks = chunk_document(text, max_tokens=60, overlap_tokens=16)
    assert len(chunks) > 5
    for previous, chunk in itertools.pairwise(chunks):
        shared = text[text_start(chunk) : previous.char_end]
        assert text_start(chunk) < chunk.char_start
        assert shared and previous.text.endswith(shared)
        assert 0 < count_tokens(shared) <= 16
        assert chunk.text.startswith(shared)


def test_overlap_starts_at_a_sentence_when_one_fits() -> None:
    text = " ".join(f"Sentence number {n} is short." for n in range(40))
    chunks = chunk_document(text, max_tokens=30, overlap_tokens=10)
    for chunk in chunks[1:]:
        assert chunk.text.startswith("Sentence number")


def test_no_overlap_across_sections() -> None:
    text = "\n\n".join(f"# Part {n}\n\n{sentences(30, seed=n)}" for n in range(3))
    chunks = chunk_document(text, max_tokens=60, overlap_tokens=16)
    assert_well_formed(text, chunks, 60)
    firsts = [c for p, c in itertools.pairwise(chunks) if p.heading_path != c.heading_path]
    assert [c.heading_path for c in firsts] == [("Part 1",), ("Part 2",)]
    for chunk in firsts:
        body_start = text.index(f"# {chunk.heading_path[0]}\n\n") + len("# Part 1\n\n")
        assert text_start(chunk) == chunk.char_start == body_start


def test_huge_paragraph_without_punctuation_is_split_at_words() -> None:
    text = " ".join(f"word{n}" for n in range(5000))
    chunks = chunk_document(text, max_tokens=100, overlap_tokens=20)
    assert len(chunks) > 40
    assert_well_formed(text, chunks, 100)
    new_material = [text[c.char_start : c.char_end] for c in chunks]
    assert " ".join(new_material) == text  # every word once, in order, cut only at spaces
    assert all(chunk.text.startswith("word") for chunk in chunks)


def test_single_oversized_word_is_cut_within_budget() -> None:
    blob = "x" * 5000
    text = f"before {blob} after"
    chunks = chunk_document(text, max_tokens=50, overlap_tokens=10)
    assert_well_formed(text, chunks, 50)
    assert "".join(text[c.char_start : c.char_end] for c in chunks).replace(" ", "") == (
        f"before{blob}after"
    )


def test_cjk_text_is_split_within_budget() -> None:
    text = "\u4e2d\u6587\u6587\u672c\uff0c\u8fd9\u662f\u4e00\u4e2a\u53e5\u5b50\u3002" * 200
    chunks = chunk_document(text, max_tokens=50, overlap_tokens=10)
    assert len(chunks) > 40
    assert_well_formed(text, chunks, 50)
    assert all(text_start(c) < c.char_start for c in chunks[1:])


def test_one_megabyte_is_chunked_whole() -> None:
    """Speed is measured by benchmarks, not asserted here; this checks a big input
    comes out whole and within budget."""
    paragraphs = []
    for index in range(2500):
        if index % 40 == 0:
            paragraphs.append(f"## Heading {index}")
        paragraphs.append(sentences(index % 9 + 1, seed=index))
    text = "\n\n".join(paragraphs)
    while len(text) < 1_000_000:
        text += "\n\n" + sentences(50)
    chunks = chunk_document(text)
    assert chunks
    assert all(c.token_count <= 200 for c in chunks)
    assert chunks[-1].char_end == len(text.rstrip())


def test_bodiless_sibling_headings_are_merged_into_one_section() -> None:
    text = "# Guide\n## Install\nRun it.\n## Alpha\n## Beta\n## Gamma\n# Appendix"
    chunks = chunk_document(text)
    assert [(c.heading_path, c.text) for c in chunks] == [
        (("Guide", "Install"), "Run it."),
        (("Guide",), "Alpha\n## Beta\n## Gamma"),
        (("Appendix",), "Appendix"),
    ]
    assert_well_formed(text, chunks, 200)


def test_many_bodiless_headings_make_few_chunks() -> None:
    text = "\n".join(f"# Heading {i}" for i in range(20_000))
    chunks = chunk_document(text)
    assert 0 < len(chunks) < 1_000
    assert_well_formed(text, chunks, 200)


def test_chunk_cap_stops_chunking() -> None:
    text = "\n\n".join(f"# Heading {i}\n\nword{i}" for i in range(50))
    assert len(chunk_document(text, max_chunks=50)) == 50
    with pytest.raises(ParseError, match="more than 49 chunks"):
        chunk_document(text, max_chunks=49)


# --- tables ----------------------------------------------------------------------------


def table(rows: int, *, header: str = "| Name | City | Note |") -> str:
    lines = [header, "| --- | :-- | --: |"]
    lines += [f"| person{n} | town{n} | {sentences(1, seed=n, words=6)} |" for n in range(rows)]
    return "\n".join(lines)


def test_small_table_is_one_chunk_with_its_header() -> None:
    text = "# People\n\n" + table(3)
    [chunk] = chunk_document(text, max_tokens=200)
    assert chunk.text == table(3)
    assert chunk.heading_path == ("People",)


def test_long_table_repeats_its_header_in_every_chunk() -> None:
    body = table(60)
    text = f"# People\n\nBefore the table.\n\n{body}\n\nAfter the table."
    chunks = chunk_document(text, max_tokens=60, overlap_tokens=10)
    table_chunks = [c for c in chunks if "person" in c.text]
    assert len(table_chunks) > 5
    header = "| Name | City | Note |\n| --- | :-- | --: |\n"
    for chunk in table_chunks:
        assert chunk.text.startswith(header) or chunk.text.startswith("Before the table.")
        assert header in chunk.text
        assert chunk.token_count == count_tokens(chunk.text) <= 60
        # The new material is the end of the text, as for every chunk.
        assert chunk.text.endswith(text[chunk.char_start : chunk.char_end])
    rows = [line for c in table_chunks for line in c.text.splitlines() if "person" in line]
    assert rows == [line for line in body.splitlines() if "person" in line]  # once, in order
    assert chunks[-1].text.endswith("After the table.")


def test_rows_longer_than_the_budget_are_cut_and_keep_the_header() -> None:
    rows = "\n".join(f"| r{n} | {sentences(8, seed=n)} |" for n in range(3))
    text = "| Key | Value |\n|---|---|\n" + rows
    chunks = chunk_document(text, max_tokens=40, overlap_tokens=8)
    assert len(chunks) > 6
    for chunk in chunks:
        assert chunk.text.startswith("| Key | Value |\n|---|---|\n")
        assert chunk.token_count <= 40


def test_a_header_too_long_to_repeat_is_not_repeated() -> None:
    header = "| " + " | ".join(f"column{n}" for n in range(8)) + " |"
    text = table(30, header=header)  # 49 tokens of header and delimiter rows: over half
    chunks = chunk_document(text, max_tokens=60, overlap_tokens=10)
    assert_well_formed(text, chunks, 60)
    assert sum(header in c.text for c in chunks) == 1


def test_pipes_without_a_delimiter_row_are_prose() -> None:
    text = "| not | a table |\n| just | pipes |\n" + sentences(30)
    chunks = chunk_document(text, max_tokens=40, overlap_tokens=8)
    assert_well_formed(text, chunks, 40)
