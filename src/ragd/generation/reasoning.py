"""Removing a reasoning model's ``<think>...</think>`` scratchpad from its reply.

Reasoning models served through OpenAI-compatible APIs (Ollama, vLLM, ...) may put their
scratchpad in the answer text. It is removed with the whitespace after it; an unclosed
one runs to the end of the reply. The reply may arrive in pieces split anywhere, even
inside a tag, so ``ScratchpadFilter`` (like ``CitationFilter``) holds back only the few
characters that could still be part of a tag; the result is the same however the reply
is split.
"""

from __future__ import annotations

__all__ = ["ScratchpadFilter"]

_OPEN = "<think>"
_CLOSE = "</think>"


class ScratchpadFilter:
    """``feed`` returns the text that is final so far, ``close`` the rest."""

    def __init__(self) -> None:
        self._pending = ""
        self._inside = False
        self._after_close = False  # whitespace right after a scratchpad is dropped too

    def feed(self, piece: str) -> str:
        self._pending += piece
        out: list[str] = []
        while self._pending:
            if self._after_close:
                self._pending = self._pending.lstrip()
                if not self._pending:
                    break
                self._after_close = False
            if self._inside:
                end = self._pending.find(_CLOSE)
                if end < 0:
                    self._pending = self._pending[-(len(_CLOSE) - 1) :]  # a split close tag?
                    break
                self._pending = self._pending[end + len(_CLOSE) :]
                self._inside, self._after_close = False, True
                continue
            start = self._pending.find(_OPEN)
            if start < 0:
                keep = len(self._pending) - _partial_tag(self._pending)
                out.append(self._pending[:keep])
                self._pending = self._pending[keep:]
                break
            out.append(self._pending[:start])
            self._pending = self._pending[start + len(_OPEN) :]
            self._inside = True
        return "".join(out)

    def close(self) -> str:
        """The held-back rest (nothing of an unclosed scratchpad)."""
        rest = "" if self._inside else self._pending
        self._pending = ""
        return rest


def _partial_tag(text: str) -> int:
    """How many characters at the end of ``text`` could begin an opening tag."""
    for size in range(min(len(_OPEN) - 1, len(text)), 0, -1):
        if _OPEN.startswith(text[-size:]):
            return size
    return 0
