"""Structure-aware chunking of normalized text under a token budget.

Chunks are what gets embedded and retrieved, so they follow the document's own structure:
a chunk never spans two Markdown sections (its ``heading_path`` says where it came from),
whole paragraphs, lists and code blocks are kept together when they fit, and only text
that cannot fit is cut, first at sentence ends, then between words. Consecutive chunks of
one section share a little trailing context so a fact split across a boundary is still
retrievable. A Markdown table too long for one chunk is cut between rows, and each chunk
of it after the first starts with the table's header row, so every chunk says what its
columns are. Work is linear in the text length; tokens are estimated, never computed
with the real tokenizer, which would dominate ingestion time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from ragd.errors import ParseError

__all__ = ["Chunk", "Heading", "chunk_document", "count_tokens", "iter_headings"]

# Scripts written without spaces: a wordpiece tokenizer emits about one token per
# character, so each character counts as a word of its own.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
# One match per estimated token group: a CJK character, a run of digits, a run of
# letters, or one punctuation mark (the underscore included, which WordPiece splits at).
_TOKEN_RE = re.compile(rf"[{_CJK}]|\d+|[^\W\d_{_CJK}]+|[^\w\s]|_")
# WordPiece cuts rare words into pieces and numbers into groups of a few digits; a run
# counts one extra token per this many letters, or per this many digits after the first.
_LETTERS_PER_EXTRA_TOKEN = 6
_DIGITS_PER_EXTRA_TOKEN = 2
_CJK_CHAR_RE = re.compile(rf"[{_CJK}\u3000-\u303f\uff00-\uffef]")
_LONG_WORD_RE = re.compile(rf"[^\W\d_{_CJK}]{{{_LETTERS_PER_EXTRA_TOKEN},}}")
_LONG_NUMBER_RE = re.compile(rf"\d{{{_DIGITS_PER_EXTRA_TOKEN + 1},}}")
# Characters per budgeted token in a prefix probed before counting a whole paragraph,
# and in the first window scanned from a chunk's end for its overlap.
_PROBE_CHARS_PER_TOKEN = 8
_OVERLAP_WINDOW_CHARS_PER_TOKEN = 4

_ATX_HEADING = re.compile(r" {0,3}(#{1,6})(?=[ \t]|$)(.*)")
_CLOSING_HASHES = re.compile(r"(?:^|[ \t])#+$")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_LIST_ITEM = re.compile(r"[ \t]*(?:[-*+]|\d{1,9}[.)])(?:[ \t]|$)")
# A GFM table: a pipe row, then the delimiter row under it (``| --- | :-: |``).
_TABLE_ROW = re.compile(r" {0,3}\|")
_TABLE_DELIMITER = re.compile(r" {0,3}\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")
# A header longer than this share of the budget is not repeated: it would crowd out rows.
_MAX_HEADER_SHARE = 0.5
# Sentence end: terminal punctuation and closing quotes/brackets, then whitespace; CJK
# full stops need no whitespace after them.
_CLOSER_CHARS = "\"'\u201d\u2019\u00bb)\\]\u300d\u300f"
_SENTENCE_END = re.compile(
    rf"((?:[.!?\u2026]+[{_CLOSER_CHARS}]*(?=\s))|(?:[\u3002\uff01\uff1f]+[{_CLOSER_CHARS}]*))\s*"
)
_LINE = re.compile(r"[^\n]+")
_SENTENCE_PUNCT = frozenset(".!?\u2026\u3002\uff01\uff1f")
_CLOSERS = frozenset("\"'\u201d\u2019\u00bb)]\u300d\u300f")

BlockKind = Literal["prose", "list", "code", "table"]


@dataclass(frozen=True)
class Chunk:
    """One retrievable unit of a document.

    ``char_start``/``char_end`` locate the chunk's new material in the chunked text (the
    overlap copied from the previous chunk lies before ``char_start``), so citations can
    point back into the source without double-highlighting overlapped text.
    """

    ordinal: int
    text: str
    heading_path: tuple[str, ...]
    char_start: int
    char_end: int
    token_count: int


@dataclass(frozen=True)
class Heading:
    """An ATX heading; ``start``/``end`` locate its text (without the ``#`` marks)."""

    level: int
    text: str
    start: int
    end: int


class _Line(NamedTuple):
    start: int
    end: int  # excludes trailing whitespace
    kind: Literal["heading", "fence", "code", "blank", "text"]
    heading: Heading | None


@dataclass
class _Block:
    start: int
    end: int
    kind: BlockKind
    header_end: int = 0  # a table's: where its header and delimiter rows end


@dataclass
class _Section:
    level: int
    path: tuple[str, ...]
    heading: Heading | None
    blocks: list[_Block] = field(default_factory=list)


class _Header(NamedTuple):
    start: int
    end: int
    tokens: int


class _Piece(NamedTuple):
    start: int
    end: int
    tokens: int
    header: _Header | None = None  # a table row's header, repeated in a chunk it starts


@dataclass
class _Span:
    text_start: int  # where the chunk text begins, overlap included
    new_start: int  # where the chunk's new material begins
    end: int
    tokens: int
    header: _Header | None = None  # a table header written before the text


def count_tokens(text: str) -> int:
    """Estimate how many wordpiece tokens ``text`` becomes, without loading a tokenizer.

    It approximates the embedding model's (MiniLM, uncased WordPiece) tokenizer, which
    silently truncates input past its 256-token window; chunks are sized with this
    estimate so they fit. Words, punctuation marks and CJK characters count one each;
    long words one extra per six letters (rare words split into several pieces), numbers
    one extra per two digits after the first. Measured against the real tokenizer on
    English prose, docs and code it runs about 5% high at the median. It is additive over
    text split at whitespace, which lets the chunker sum the counts of pieces instead of
    re-counting.
    """
    words = _LONG_WORD_RE.findall(text)
    numbers = _LONG_NUMBER_RE.findall(text)
    extra = sum(len(word) // _LETTERS_PER_EXTRA_TOKEN for word in words)
    extra += sum((len(number) - 1) // _DIGITS_PER_EXTRA_TOKEN for number in numbers)
    return len(_TOKEN_RE.findall(text)) + extra


def iter_headings(text: str) -> Iterator[Heading]:
    """Yield the ATX headings of Markdown ``text``, skipping ``#`` lines in code fences."""
    for line in _scan_lines(text):
        if line.heading is not None:
            yield line.heading


def chunk_document(
    text: str,
    *,
    max_tokens: int = 200,
    overlap_tokens: int = 32,
    max_chunks: int | None = None,
    markdown: bool = True,
) -> list[Chunk]:
    """Split ``text`` into chunks of at most ``max_tokens`` estimated tokens.

    The default leaves room under the embedding model's 256-token window for its special
    tokens and for estimation error. A single word longer than the budget is cut inside
    the word, so the budget holds for every chunk. A run of bodiless sibling headings is
    chunked as one section (a table of contents, or a file of a million ``#`` lines, must
    not become one chunk per line). Past ``max_chunks`` it stops with a ParseError: every
    chunk costs an embedding and a row, so a document that needs more is refused, not
    stored in part. With ``markdown`` false (source code) no line is a heading or a
    fence: paragraphs are cut at blank lines and, when too long, between lines.
    """
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError("overlap_tokens must be >= 0 and less than max_tokens")
    chunks: list[Chunk] = []
    sections = _split_sections(text) if markdown else [_Section(0, (), None, _code_blocks(text))]
    index = 0
    while index < len(sections):
        path, blocks, index = _next_section(text, sections, index)
        pieces = _section_pieces(text, blocks, max_tokens, max_tokens - overlap_tokens)
        for span in _pack(text, pieces, max_tokens, overlap_tokens):
            if max_chunks is not None and len(chunks) >= max_chunks:
                raise ParseError(
                    f"document has more than {max_chunks:,} chunks; split it into smaller files"
                )
            chunks.append(_make_chunk(text, span, path, len(chunks)))
    return chunks


def _next_section(
    text: str, sections: list[_Section], index: int
) -> tuple[tuple[str, ...], list[_Block], int]:
    """The path and blocks of the section at ``index``, merged with the bodiless sibling
    headings that follow a bodiless one; returns the index after what was taken.

    A merged heading's block starts at its line, ``#`` marks included, so the tokens
    the chunk text will hold are the ones counted against the budget."""
    section = sections[index]
    if section.blocks:
        return section.path, section.blocks, index + 1
    blocks = _heading_only_blocks(sections, index)
    end = index + 1
    while blocks and end < len(sections) and _bodiless_sibling(section, sections, end):
        for block in _heading_only_blocks(sections, end):
            line_start = text.rfind("\n", 0, block.start) + 1
            blocks.append(_Block(line_start, block.end, block.kind))
        end += 1
    return (section.path if end == index + 1 else section.path[:-1]), blocks, end


def _bodiless_sibling(first: _Section, sections: list[_Section], index: int) -> bool:
    other = sections[index]
    return (
        not other.blocks
        and other.level == first.level
        and other.path[:-1] == first.path[:-1]
        and bool(_heading_only_blocks(sections, index))
    )


def _make_chunk(text: str, span: _Span, path: tuple[str, ...], ordinal: int) -> Chunk:
    body = text[span.text_start : span.end]
    if span.header is not None:
        body = text[span.header.start : span.header.end] + "\n" + body
    return Chunk(ordinal, body, path, span.new_start, span.end, count_tokens(body))


# --- structure -------------------------------------------------------------------------


def _scan_lines(text: str) -> Iterator[_Line]:
    """Classify each line once; fence state decides whether ``#`` starts a heading."""
    fence: str | None = None
    pos = 0
    for raw in text.split("\n"):
        start, stripped = pos, raw.rstrip()
        pos += len(raw) + 1
        end = start + len(stripped)
        if fence is not None:
            if _closes_fence(stripped, fence):
                fence = None
            yield _Line(start, end, "code", None)
        elif not stripped.strip():
            yield _Line(start, start, "blank", None)
        elif match := _FENCE.match(stripped):
            fence = match.group(1)
            yield _Line(start, end, "fence", None)
        elif heading := _parse_heading(stripped, start):
            yield _Line(start, end, "heading", heading)
        else:
            yield _Line(start, end, "text", None)


def _closes_fence(line: str, fence: str) -> bool:
    match = _FENCE.match(line)
    if match is None:
        return False
    marks = match.group(1)
    return marks[0] == fence[0] and len(marks) >= len(fence) and not line[match.end() :].strip()


def _parse_heading(line: str, offset: int) -> Heading | None:
    match = _ATX_HEADING.match(line)
    if match is None:
        return None
    raw = match.group(2)
    content = _CLOSING_HASHES.sub("", raw.strip()).strip()
    start = offset + match.start(2) + (len(raw) - len(raw.lstrip()))
    return Heading(len(match.group(1)), content, start, start + len(content))


def _split_sections(text: str) -> list[_Section]:
    """Cut the text at headings; each section carries the path of headings above it."""
    sections = [_Section(0, (), None)]
    stack: list[Heading] = []
    lines: list[_Line] = []
    for line in _scan_lines(text):
        if line.heading is None:
            lines.append(line)
            continue
        sections[-1].blocks = _blocks(text, lines)
        lines = []
        while stack and stack[-1].level >= line.heading.level:
            stack.pop()
        stack.append(line.heading)
        path = tuple(h.text for h in stack if h.text)
        sections.append(_Section(line.heading.level, path, line.heading))
    sections[-1].blocks = _blocks(text, lines)
    return sections


def _code_blocks(text: str) -> list[_Block]:
    """Runs of non-blank lines, each cut between lines if over the budget."""
    blocks: list[_Block] = []
    current: _Block | None = None
    pos = 0
    for raw in text.split("\n"):
        start, end = pos, pos + len(raw.rstrip())
        pos += len(raw) + 1
        if not raw.strip():
            current = None
        elif current is not None:
            current.end = end
        else:
            current = _Block(start, end, "code")
            blocks.append(current)
    return blocks


def _blocks(text: str, lines: list[_Line]) -> list[_Block]:
    """Group lines into paragraphs, lists and fenced code blocks."""
    blocks: list[_Block] = []
    current: _Block | None = None
    for line in lines:
        if line.kind == "blank":
            current = None
        elif line.kind == "code" and current is not None and current.kind == "code":
            if line.end > line.start:  # a blank line inside a fence must not end the block
                current.end = line.end
        elif line.kind == "text" and current is not None and current.kind != "code":
            current.end = line.end
        else:
            current = _Block(line.start, line.end, _line_block_kind(text, line))
            blocks.append(current)
    return [_mark_table(text, block) for block in _merge_lists(text, blocks)]


def _mark_table(text: str, block: _Block) -> _Block:
    """A prose block that opens with a pipe row and a delimiter row is a table."""
    if block.kind != "prose" or not _TABLE_ROW.match(text, block.start):
        return block
    first_end = text.find("\n", block.start, block.end)
    if first_end < 0:
        return block
    second_end = text.find("\n", first_end + 1, block.end)
    second_end = block.end if second_end < 0 else second_end
    if not _TABLE_DELIMITER.fullmatch(text, first_end + 1, second_end):
        return block
    return _Block(block.start, block.end, "table", header_end=second_end)


def _line_block_kind(text: str, line: _Line) -> BlockKind:
    if line.kind in ("fence", "code"):
        return "code"
    return "list" if _LIST_ITEM.match(text, line.start, line.end) else "prose"


def _merge_lists(text: str, blocks: list[_Block]) -> list[_Block]:
    """Rejoin a loose list (items separated by blank lines) into one block."""
    merged: list[_Block] = []
    for block in blocks:
        previous = merged[-1] if merged else None
        continues = block.kind == "list" or (block.kind == "prose" and text[block.start] in " \t")
        if previous is not None and previous.kind == "list" and continues:
            previous.end = block.end
        else:
            merged.append(block)
    return merged


def _heading_only_blocks(sections: list[_Section], index: int) -> list[_Block]:
    """Keep a bodiless heading as text unless a subsection carries it in its path."""
    section = sections[index]
    heading = section.heading
    if heading is None or not heading.text:
        return []
    following = sections[index + 1] if index + 1 < len(sections) else None
    if following is not None and following.level > section.level:
        return []
    return [_Block(heading.start, heading.end, "prose")]


# --- pieces: units no larger than the budget -------------------------------------------


def _section_pieces(
    text: str, blocks: list[_Block], max_tokens: int, unit_budget: int
) -> Iterator[_Piece]:
    """Yield whole blocks that fit in a chunk, and cut the others into smaller units.

    Cut units get ``unit_budget`` (the budget less the overlap) so that a chunk made of
    one of them still has room for the overlap from the chunk before.
    """
    for block in blocks:
        tokens = _count_within(text, block.start, block.end, max_tokens)
        if tokens is not None:
            yield _Piece(block.start, block.end, tokens)
            continue
        if block.kind == "table" and (header := _table_header(text, block, max_tokens)):
            yield from _table_pieces(text, block, header, max_tokens)
            continue
        units = _sentences if block.kind == "prose" else _lines
        for start, end in units(text, block.start, block.end):
            unit_tokens = _count_within(text, start, end, unit_budget)
            if unit_tokens is not None:
                yield _Piece(start, end, unit_tokens)
            else:
                yield from _word_pieces(text, start, end, unit_budget)


def _table_header(text: str, block: _Block, max_tokens: int) -> _Header | None:
    """The header and delimiter rows of a table, unless too long to repeat."""
    tokens = _count_within(text, block.start, block.header_end, int(max_tokens * _MAX_HEADER_SHARE))
    return None if tokens is None else _Header(block.start, block.header_end, tokens)


def _table_pieces(text: str, block: _Block, header: _Header, max_tokens: int) -> Iterator[_Piece]:
    """A table's rows, each carrying the header that a chunk starting with it repeats.

    The first piece holds the header itself followed by the first row, so the header
    never ends a chunk on its own. Rows are cut to the budget left beside the header.
    """
    budget = max_tokens - header.tokens
    pieces: Iterator[_Piece] = (
        _Piece(start, end, tokens, header)
        for row_start, row_end in _lines(text, header.end, block.end)
        for start, end, tokens, _ in _row_pieces(text, row_start, row_end, budget)
    )
    first = next(pieces, None)
    if first is None:
        yield _Piece(header.start, header.end, header.tokens)
        return
    yield _Piece(header.start, first.end, header.tokens + first.tokens)
    yield from pieces


def _row_pieces(text: str, start: int, end: int, budget: int) -> Iterator[_Piece]:
    tokens = _count_within(text, start, end, budget)
    if tokens is not None:
        yield _Piece(start, end, tokens)
    else:
        yield from _word_pieces(text, start, end, budget)


def _count_within(text: str, start: int, end: int, limit: int) -> int | None:
    """Token count of ``text[start:end]`` if at most ``limit``, else None.

    A prefix never counts more tokens than the whole, so a prefix already over the limit
    settles it without tokenizing a huge paragraph that is going to be cut anyway.
    """
    probe_end = start + limit * _PROBE_CHARS_PER_TOKEN
    if probe_end < end and count_tokens(text[start:probe_end]) > limit:
        return None
    tokens = count_tokens(text[start:end])
    return tokens if tokens <= limit else None


def _sentences(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    position = start
    for match in _SENTENCE_END.finditer(text, start, end):
        yield position, match.end(1)
        position = match.end()
    if position < end:
        yield position, end


def _lines(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    for match in _LINE.finditer(text, start, end):
        line = match.group()
        if line.strip():
            yield match.start(), match.start() + len(line.rstrip())


def _word_pieces(text: str, start: int, end: int, budget: int) -> Iterator[_Piece]:
    """Pack whole words into pieces of at most ``budget`` tokens."""
    current: _Piece | None = None
    for word in _words(text, start, end, budget):
        # Parts of one cut word (no whitespace between them) never share a piece, which
        # keeps token counts additive.
        if current and current.tokens + word.tokens <= budget and word.start != current.end:
            current = _Piece(current.start, word.end, current.tokens + word.tokens)
            continue
        if current:
            yield current
        current = word
    if current:
        yield current


def _words(text: str, start: int, end: int, budget: int) -> Iterator[_Piece]:
    """Yield the words of a span in one regex pass, cutting any over ``budget`` tokens.

    A "word" is a run of tokens with no whitespace between them (``foo.bar/baz``, or a
    line of CJK); one over the budget is cut between tokens, and a single enormous token
    (a base64 blob, say) between characters.
    """
    word_start = word_end = word_tokens = 0
    for match in _TOKEN_RE.finditer(text, start, end):
        token_start, token_end = match.span()
        tokens = _span_tokens(text, token_start, token_end)
        if word_tokens and token_start == word_end and word_tokens + tokens <= budget:
            word_end, word_tokens = token_end, word_tokens + tokens
            continue
        if word_tokens:
            yield _Piece(word_start, word_end, word_tokens)
        if tokens > budget:
            *cuts, (token_start, token_end) = _split_token(text, token_start, token_end, budget)
            yield from (_Piece(s, e, _span_tokens(text, s, e)) for s, e in cuts)
            tokens = _span_tokens(text, token_start, token_end)
        word_start, word_end, word_tokens = token_start, token_end, tokens
    if word_tokens:
        yield _Piece(word_start, word_end, word_tokens)


def _span_tokens(text: str, start: int, end: int) -> int:
    """Token estimate of one ``_TOKEN_RE`` match, as :func:`count_tokens` counts it."""
    length = end - start
    if length == 1:
        return 1
    if text[start].isdecimal():
        return 1 + (length - 1) // _DIGITS_PER_EXTRA_TOKEN
    return 1 + length // _LETTERS_PER_EXTRA_TOKEN


def _split_token(text: str, start: int, end: int, budget: int) -> list[tuple[int, int]]:
    """Cut one enormous letter or digit run into runs of at most ``budget`` tokens."""
    if text[start].isdecimal():  # n digits count 1 + (n - 1) // 2: at most budget if n <= 2b
        step = _DIGITS_PER_EXTRA_TOKEN * budget
    else:  # n letters count 1 + n // 6: at most budget if n < 6b
        step = _LETTERS_PER_EXTRA_TOKEN * budget - 1
    return [(position, min(position + step, end)) for position in range(start, end, step)]


# --- packing with overlap --------------------------------------------------------------


def _pack(text: str, pieces: Iterator[_Piece], max_tokens: int, overlap: int) -> list[_Span]:
    """Greedily fill chunks with pieces; start each new chunk with the previous one's tail."""
    spans: list[_Span] = []
    current: _Span | None = None
    for piece in pieces:
        if current is not None and current.tokens + piece.tokens <= max_tokens:
            current.end, current.tokens = piece.end, current.tokens + piece.tokens
            continue
        if piece.header is not None:  # a table row: its header, not an overlap, leads
            if current is not None:
                spans.append(current)
            tokens = piece.header.tokens + piece.tokens
            current = _Span(piece.start, piece.start, piece.end, tokens, piece.header)
            continue
        text_start, tokens = piece.start, piece.tokens
        if current is not None:
            spans.append(current)
            budget = min(overlap, max_tokens - piece.tokens)
            tail_start, tail_tokens = _overlap(text, current.text_start, current.end, budget)
            if tail_tokens:
                text_start, tokens = tail_start, tokens + tail_tokens
        current = _Span(text_start, piece.start, piece.end, tokens)
    if current is not None:
        spans.append(current)
    return spans


def _overlap(text: str, start: int, end: int, budget: int) -> tuple[int, int]:
    """Return where the trailing ``budget`` tokens of ``text[start:end]`` begin, and their count.

    Prefers to begin at a sentence (or paragraph) start, which reads naturally, unless
    that yields under half the budget; then it begins at the furthest word start. Only growing
    windows at the end are tokenized, not the whole chunk.
    """
    if budget <= 0:
        return end, 0
    window = budget * _OVERLAP_WINDOW_CHARS_PER_TOKEN
    while end - window > start:
        if found := _overlap_in(text, end - window, end, budget):
            return found
        window *= 4
    return _overlap_in(text, start, end, budget, whole=True) or (end, 0)


def _overlap_in(
    text: str, start: int, end: int, budget: int, *, whole: bool = False
) -> tuple[int, int] | None:
    """Scan tokens backwards from ``end`` until the budget is spent.

    Returns None when a window (not ``whole``) is exhausted within budget, since earlier
    text may then belong to the overlap. A token cut by the window start only matters if
    it is the one that exceeds the budget, which a cut token does not do more than a
    whole one, so a result from the window equals the result from the whole span.
    """
    tokens = [m.span() for m in _TOKEN_RE.finditer(text, start, end)]
    total = word_tokens = sentence_tokens = 0
    word_start = sentence_start = end
    for index in range(len(tokens) - 1, -1, -1):
        token_start, token_end = tokens[index]
        total += _span_tokens(text, token_start, token_end)
        if total > budget:
            break
        if index and tokens[index - 1][1] == token_start and not _cjk_boundary(text, tokens, index):
            continue  # inside a word
        word_start, word_tokens = token_start, total
        if _starts_sentence(text, tokens, index):
            sentence_start, sentence_tokens = token_start, total
    else:
        if not whole:
            return None
    if sentence_tokens * 2 >= budget:
        return sentence_start, sentence_tokens
    return word_start, word_tokens


def _cjk_boundary(text: str, tokens: list[tuple[int, int]], index: int) -> bool:
    """CJK text has no spaces; any position next to a CJK character is a word boundary."""
    return bool(
        _CJK_CHAR_RE.match(text, tokens[index][0]) or _CJK_CHAR_RE.match(text, tokens[index - 1][0])
    )


def _starts_sentence(text: str, tokens: list[tuple[int, int]], index: int) -> bool:
    if index == 0:
        return True
    previous_start, previous_end = tokens[index - 1]
    if "\n\n" in text[previous_end : tokens[index][0]]:
        return True
    previous = text[previous_start:previous_end]
    if previous in _SENTENCE_PUNCT:
        return True
    if previous in _CLOSERS and index >= 2:
        before_start, before_end = tokens[index - 2]
        return before_end == previous_start and text[before_start:before_end] in _SENTENCE_PUNCT
    return False
