"""A reasoning model's <think> scratchpad is removed however its reply is split."""

from __future__ import annotations

import re

import pytest

from ragd.generation.reasoning import ScratchpadFilter

# What the non-streaming reply always had removed: the scratchpad, to the end if unclosed,
# and the whitespace after it.
_REFERENCE = re.compile(r"<think>.*?(?:</think>|\Z)\s*", re.DOTALL)

REPLIES = [
    "Paris [1].",
    "<think>The user wants [9].</think>\n\nParis [1].",
    "<think>still thinking",
    "Before <think>a</think> after <think>b</think>\n",
    "a < b and <thinking> is not a tag; <think>x</thin",
    "<think><think>nested</think> rest</think>",
    "</think> stray close",
]


def _filtered(pieces: list[str]) -> str:
    scratchpad = ScratchpadFilter()
    return "".join(scratchpad.feed(piece) for piece in pieces) + scratchpad.close()


@pytest.mark.parametrize("reply", REPLIES)
def test_every_split_gives_the_whole_reply_result(reply: str) -> None:
    expected = _REFERENCE.sub("", reply)
    assert _filtered([reply]) == expected
    for cut in range(len(reply) + 1):
        for second in range(cut, len(reply) + 1):
            pieces = [reply[:cut], reply[cut:second], reply[second:]]
            assert _filtered(pieces) == expected, pieces


def test_text_is_handed_out_as_soon_as_it_cannot_be_a_tag() -> None:
    scratchpad = ScratchpadFilter()
    assert scratchpad.feed("Paris is <") == "Paris is "
    assert scratchpad.feed("b>") == "<b>"
    assert scratchpad.feed("<think>hidden") == ""
    assert scratchpad.feed("</think>  shown") == "shown"
    assert scratchpad.close() == ""
