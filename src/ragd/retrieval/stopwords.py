"""The stop-word lists: words too common to say what a text is about.

There are two lists on purpose, and the second extends the first:

- ``QUERY_STOP_WORDS`` is dropped from a search query before the full-text leg. It is
  short because every word removed there can no longer match: "about", "after" or "over"
  may be what a keyword search is looking for, and the BM25 ranking (and with it the
  evaluation baselines) was measured with exactly this list.
- ``CONTENT_STOP_WORDS`` is dropped when comparing a question with sentences (the
  extractive generator) and when picking the subject of an earlier chat turn (the
  follow-up rewrite). There, request words ("tell", "explain", "please") and function
  words carry no subject, and counting them would choose sentences that merely share
  phrasing with the question.

Merging them would change rankings one way or answers the other, so they stay two named
lists in one place.
"""

from __future__ import annotations

__all__ = ["CONTENT_STOP_WORDS", "QUERY_STOP_WORDS"]

# Dropped from search queries (and from content comparisons).
_QUERY_WORDS = """
    a an and are as at be been but by can could did do does for from had has have he how
    i if in into is it its me my no not of on or our she so such that the their them then
    there these they this those to was we were what when where which while who whom why
    will with would you your
"""
# Only for comparing content (see above): would hide real search terms from a query.
_CONTENT_ONLY_WORDS = """
    about above after again against all am any because before being below between both
    doing done down during each few further having her here hers herself him himself his
    itself just more most myself nor now off once only other ours ourselves out over own
    same should some than theirs themselves through too under until up very yours
    yourself yourselves also may might must shall get got s t don doesn isn aren wasn
    weren won ll ve re d m tell explain describe please give show know let
"""

QUERY_STOP_WORDS = frozenset(_QUERY_WORDS.split())
CONTENT_STOP_WORDS = QUERY_STOP_WORDS | frozenset(_CONTENT_ONLY_WORDS.split())
