"""A document's text rebuilt from the chunks the real chunker makes, and its excerpts."""

from __future__ import annotations

from ragd.domain import StoredChunk
from ragd.ingest.chunking import chunk_document
from ragd.mcp.text import document_text, excerpt, snippet


def stored(text: str, *, max_tokens: int = 60, overlap_tokens: int = 12) -> list[StoredChunk]:
    return [
        StoredChunk(
            id=f"chk_{c.ordinal}",
            document_id="doc_1",
            collection_id="col_1",
            ordinal=c.ordinal,
            text=c.text,
            heading_path=c.heading_path,
            token_count=c.token_count,
            char_start=c.char_start,
            char_end=c.char_end,
        )
        for c in chunk_document(text, max_tokens=max_tokens, overlap_tokens=overlap_tokens)
    ]


def test_overlapping_chunks_give_the_text_back_once_with_its_headings() -> None:
    words = " ".join(f"w{i}" for i in range(400))
    text = (
        "# Tower Bridge\n\nTower Bridge opened in 1894.\n\n## Design\n\n"
        "It is a combined bascule and suspension bridge.\n\n## Empty\n\n# Other\n\n" + words
    )
    chunks = stored(text)
    assert len(chunks) > 4  # the long section is split, with overlaps
    assert any(c.char_start > c.char_end - len(c.text) for c in chunks)
    assert document_text(chunks) == text


def test_chunk_order_comes_from_the_ordinal_not_the_list() -> None:
    text = "First paragraph here.\n\nSecond paragraph there.\n\n" + "more words " * 80
    chunks = stored(text)
    assert document_text(list(reversed(chunks))) == document_text(chunks)


def test_a_document_without_chunks_has_no_text() -> None:
    assert document_text([]) == ""


def test_excerpts_are_bounded_and_say_so() -> None:
    text = "alpha beta gamma delta " * 100
    whole = excerpt(text, len(text))
    assert whole.text == text and not whole.truncated
    cut = excerpt(text, 50)
    assert cut.truncated and len(cut.text) <= 52 and cut.text.endswith(" …")
    assert text.startswith(cut.text.removesuffix(" …"))
    unbroken = excerpt("x" * 100, 10)
    assert unbroken.text == "x" * 10 + " …"


def test_snippets_are_one_short_line() -> None:
    assert snippet("a\n\nb   c") == "a b c"
    long = snippet("word " * 200, limit=40)
    assert len(long) <= 40 and long.endswith("…")
