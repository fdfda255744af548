"""Tests for ragd.ingest.textnorm: normalization, hashing and strict decoding."""

from __future__ import annotations

import codecs

import pytest

from ragd.errors import InvalidInput
from ragd.ingest.textnorm import content_hash, decode_text, normalize_text


def test_normalize_composes_unicode_to_nfc() -> None:
    assert normalize_text("cafe\u0301") == "caf\u00e9"


def test_normalize_converts_crlf_and_cr_to_lf() -> None:
    assert normalize_text("a\r\nb\rc\nd") == "a\nb\nc\nd"


def test_normalize_strips_control_characters_but_keeps_tab_and_newline() -> None:
    assert normalize_text("a\x00b\x07c\td\x1be\x7ff\x9fg\nh") == "abc\tdefg\nh"


def test_normalize_turns_form_feed_and_line_separators_into_newlines() -> None:
    assert normalize_text("page one\x0cpage two\u2028three") == "page one\npage two\nthree"


def test_normalize_strips_trailing_whitespace_per_line() -> None:
    assert normalize_text("a  \nb\t\n  c \u00a0") == "a\nb\n  c"


def test_normalize_collapses_three_or_more_blank_lines_to_two() -> None:
    assert normalize_text("a\n\n\n\n\n\nb") == "a\n\n\nb"
    assert normalize_text("a\n\n\nb") == "a\n\n\nb"
    assert normalize_text("a\n \n\t\n  \n\nb") == "a\n\n\nb"


def test_normalize_strips_leading_and_trailing_whitespace() -> None:
    assert normalize_text("\n\n  hello world \n\n") == "hello world"
    assert normalize_text(" \t\n\x00 ") == ""


def test_normalize_is_idempotent() -> None:
    messy = " Title\r\n\r\n\r\n\r\n\r\nbody\x00 text  \r\nend\x0c"
    once = normalize_text(messy)
    assert normalize_text(once) == once


def test_normalize_long_space_runs_is_fast() -> None:
    text = "a" + " " * 2_000_000 + "b"
    assert normalize_text(text) == text


def test_content_hash_is_sha256_of_utf8() -> None:
    expected = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert content_hash("hello") == expected


def test_content_hash_is_stable_across_equivalent_inputs() -> None:
    first = content_hash(normalize_text("Caf\u00e9\r\nline two  \n"))
    second = content_hash(normalize_text("Cafe\u0301\nline two"))
    assert first == second
    assert first != content_hash(normalize_text("Cafe line two"))
    assert len(first) == 64


def test_decode_text_reads_utf8() -> None:
    assert decode_text("h\u00e9llo \u2603".encode()) == "h\u00e9llo \u2603"


def test_decode_text_drops_utf8_bom() -> None:
    assert decode_text(codecs.BOM_UTF8 + b"hello") == "hello"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_decode_text_reads_utf16_with_bom(encoding: str) -> None:
    bom = codecs.BOM_UTF16_BE if encoding == "utf-16-be" else codecs.BOM_UTF16_LE
    body = "h\u00e9llo \u2603".encode(encoding)
    data = body if encoding == "utf-16" else bom + body
    assert decode_text(data) == "h\u00e9llo \u2603"


@pytest.mark.parametrize("data", [b"caf\xe9", b"\xff\xfe\x00", b"ok \xc3", b"\x80abc"])
def test_decode_text_rejects_invalid_utf8(data: bytes) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_text(data)
    assert caught.value.detail == "file is not valid UTF-8 text"
