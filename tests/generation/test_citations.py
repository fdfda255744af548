from __future__ import annotations

import pytest

from ragd.generation import CitationFilter, extract_citations

VALID = {1, 2, 3}


@pytest.mark.parametrize(
    ("text", "cleaned", "cited"),
    [
        ("Paris is the capital [1].", "Paris is the capital [1].", (1,)),
        ("A [2] and B [1] and C [2].", "A [2] and B [1] and C [2].", (2, 1)),
        ("Grouped [1, 3].", "Grouped [1, 3].", (1, 3)),
        ("Semicolons [1; 2].", "Semicolons [1; 2].", (1, 2)),
        ("Adjacent [3][1].", "Adjacent [3][1].", (3, 1)),
        ("Source prefix [Source 2].", "Source prefix [2].", (2,)),
        ("No citations at all.", "No citations at all.", ()),
    ],
)
def test_finds_valid_citations_in_first_appearance_order(
    text: str, cleaned: str, cited: tuple[int, ...]
) -> None:
    assert extract_citations(text, VALID) == (cleaned, cited)


@pytest.mark.parametrize(
    ("text", "cleaned", "cited"),
    [
        ("Paris is big [9].", "Paris is big.", ()),
        ("Paris [1] is big [9].", "Paris [1] is big.", (1,)),
        ("One [9] two [1].", "One two [1].", (1,)),
        ("Mixed [1, 9, 2].", "Mixed [1, 2].", (1, 2)),
        ("Adjacent [1][9][2].", "Adjacent [1][2].", (1, 2)),
        ("Zero [0], end.", "Zero, end.", ()),
        ("[9] Starts a line.\n[7] And another.", "Starts a line.\nAnd another.", ()),
        ("Glued[9]word.", "Glued word.", ()),
        ("Repeated [1, 1] once.", "Repeated [1] once.", (1,)),
    ],
)
def test_drops_invented_citations_and_tidies_spaces(
    text: str, cleaned: str, cited: tuple[int, ...]
) -> None:
    assert extract_citations(text, VALID) == (cleaned, cited)


@pytest.mark.parametrize(
    "text",
    [
        "Index with `items[9]` in code.",
        "```python\nvalue = table[9]\n```",
        "The year [2024] is not a citation.",
        "A link [9](https://example.com) stays.",
        "Words [in brackets] stay.",
    ],
)
def test_leaves_non_citations_alone(text: str) -> None:
    assert extract_citations(text, VALID) == (text, ())


def test_citations_inside_code_are_not_counted() -> None:
    text = "Use `x[1]` here [2]."
    assert extract_citations(text, VALID) == (text, (2,))


def test_no_valid_numbers_drops_every_marker() -> None:
    assert extract_citations("Claim [1] and [2].", ()) == ("Claim and.", ())


STREAM_TEXT = (
    "Paris [1] is big [9]. It has [Source 2] a tower [9][2] `x[9]` and\n"
    "[7] a river [1, 9] in code ```a[9]``` done [3]"
)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 1000])
def test_filter_over_deltas_matches_whole_text(size: int) -> None:
    expected = extract_citations(STREAM_TEXT, VALID)
    citations = CitationFilter(VALID)
    pieces = [STREAM_TEXT[i : i + size] for i in range(0, len(STREAM_TEXT), size)]
    out = "".join(citations.feed(piece) for piece in pieces) + citations.close()
    assert (out.strip(), citations.cited) == expected


def test_filter_releases_text_that_cannot_be_a_marker() -> None:
    citations = CitationFilter(VALID)
    assert citations.feed("Hello world") == "Hello world"
    assert citations.feed(" [") == ""  # may become a marker
    assert citations.feed("1") == ""
    assert citations.feed("]") == ""  # the next character decides "(url)" or not
    assert citations.feed(" next.") == " [1] next."
    assert citations.close() == ""
    assert citations.cited == (1,)
