"""Find, validate and clean ``[n]`` citation markers in generated text.

A marker is ``[n]``, ``[n, m]`` (also ``;``-separated) or ``[Source n]``; adjacent
markers (``[1][2]``) are separate markers. Numbers that are not valid passage numbers
are invented and are dropped from the text, with the space before them tidied away.
Markers inside inline code or fenced code blocks are left alone, as are numbers of four
or more digits (``[2024]`` is not a citation) and Markdown links (``[1](url)``).

``CitationFilter`` does the same over a stream of text deltas, holding back only the
few characters that could still turn out to be (part of) a marker.

Which numbers are valid is for ``AnswerService`` to say (it knows the passages); the
generators only read what their text cites (``cited_numbers``).
"""

from __future__ import annotations

import re
from collections.abc import Collection

__all__ = ["CitationFilter", "cited_numbers", "extract_citations"]

_MARKER = r"\[\s*(?P<prefix>sources?\s*:?\s*)?(?P<nums>\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\s*\](?!\()"
# One scan finds backtick runs (code-span boundaries) and markers, in order.
_TOKEN = re.compile(rf"(?P<ticks>`+)|{_MARKER}", re.IGNORECASE)
# The end of a partial text that may still change meaning when more text arrives:
# spaces (a following dropped marker removes them), backticks (a run may grow) and a
# bracket that may be, or be the start of, a marker.
_HOLD = re.compile(r"(?:[ \t`]|\[[^\[\]\n]{0,24}\]?)*\Z")
_TIGHT_AFTER = frozenset(".,;:!?)]}\"'")
# Every number a marker can hold (one to three digits).
_ANY_NUMBER = frozenset(range(1000))


class CitationFilter:
    """Cleans citation markers in text that arrives in pieces.

    ``feed`` returns the part of the text that is final so far; ``close`` returns the
    rest. ``cited`` lists the valid numbers seen, in first-appearance order.
    """

    def __init__(self, valid: Collection[int]) -> None:
        self._valid = frozenset(valid)
        self._pending = ""
        self._in_code = False
        self._last = ""  # last character handed out, for tidying at a piece boundary
        self._cited: list[int] = []

    @property
    def cited(self) -> tuple[int, ...]:
        return tuple(self._cited)

    def feed(self, delta: str) -> str:
        self._pending += delta
        hold = _HOLD.search(self._pending)
        cut = hold.start() if hold else len(self._pending)
        return self._emit(cut, final=False)

    def close(self) -> str:
        return self._emit(len(self._pending), final=True)

    def _emit(self, cut: int, *, final: bool) -> str:
        segment, self._pending = self._pending[:cut], self._pending[cut:]
        if not segment:
            return ""
        out = self._clean(segment, final=final)
        if out:
            self._last = out[-1]
        return out

    def _clean(self, segment: str, *, final: bool) -> str:
        buf = ""
        pos = 0
        for match in _TOKEN.finditer(segment):
            buf += segment[pos : match.start()]
            pos = match.end()
            if match.group("ticks"):
                self._in_code = not self._in_code
                buf += match.group(0)
            elif self._in_code:
                buf += match.group(0)
            else:
                replacement = self._replace(match)
                if replacement:
                    buf += replacement
                else:
                    buf, pos = _drop(buf, segment, pos, self._last)
        return buf + segment[pos:]

    def _replace(self, match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.findall(r"\d+", match.group("nums"))]
        kept: list[int] = []
        for number in numbers:
            if number in self._valid and number not in kept:
                kept.append(number)
                if number not in self._cited:
                    self._cited.append(number)
        if kept == numbers and not match.group("prefix"):
            return match.group(0)
        return f"[{', '.join(map(str, kept))}]" if kept else ""


def _drop(buf: str, segment: str, pos: int, last: str) -> tuple[str, int]:
    """Tidy the spaces around a marker being removed; returns the new buffer and position."""
    following = segment[pos] if pos < len(segment) else ""
    stripped = buf.rstrip(" \t")
    before = stripped[-1] if stripped else last
    if before in ("", "\n"):
        # A marker that opened a line: do not leave the line starting with a space.
        while pos < len(segment) and segment[pos] in " \t":
            pos += 1
        return stripped, pos
    if not following or following.isspace() or following in _TIGHT_AFTER:
        # "claim [9]." -> "claim."  and  "claim [9] more" -> "claim more"
        return stripped, pos
    if stripped == buf and before.isalnum() and following.isalnum():
        return buf + " ", pos  # "see[9]here" -> "see here"
    return buf, pos


def extract_citations(text: str, valid: Collection[int]) -> tuple[str, tuple[int, ...]]:
    """Return ``text`` without invented citations and the valid numbers it cites.

    Cited numbers are unique and in order of first appearance.
    """
    cleaner = CitationFilter(valid)
    cleaned = cleaner.feed(text) + cleaner.close()
    return cleaned.strip(), cleaner.cited


def cited_numbers(text: str) -> tuple[int, ...]:
    """The numbers the markers of ``text`` cite, unique and in first-cited order, whether
    or not they name a passage."""
    return extract_citations(text, _ANY_NUMBER)[1]
