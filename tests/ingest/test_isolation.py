"""run_isolated: a parse in a child process that a deadline, a memory cap or the caller
can stop; the errors that come back are the ones a user can read."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

import pytest

from ragd.errors import ParseError, UnsupportedMediaType
from ragd.ingest.isolation import Cancelled, run_isolated


def double(value: int) -> int:
    return value * 2


def spin(_: object) -> None:
    while True:
        time.sleep(0.01)


def refuse(_: object) -> None:
    raise UnsupportedMediaType("a PNG image is not supported")


def crash(_: object) -> None:
    os._exit(3)


def hog(_: object) -> int:
    blob = bytearray(1024 * 1024 * 1024)  # 1 GiB, over the 256 MiB cap below
    return len(blob)


def broken(_: object) -> None:
    raise KeyError("/Root")


def test_result_comes_back() -> None:
    assert run_isolated(double, 21, timeout_s=60) == 42


def test_deadline_kills_the_child() -> None:
    with pytest.raises(ParseError, match="longer than 1 s"):
        run_isolated(spin, None, timeout_s=1)
    assert multiprocessing.active_children() == []


def test_cancel_kills_the_child() -> None:
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    with pytest.raises(Cancelled):
        run_isolated(spin, None, timeout_s=600, cancelled=cancel.is_set)
    assert multiprocessing.active_children() == []


def test_ragd_errors_keep_their_class_and_detail() -> None:
    with pytest.raises(UnsupportedMediaType, match="a PNG image is not supported"):
        run_isolated(refuse, None, timeout_s=60)


def test_other_exceptions_become_a_short_parse_error() -> None:
    with pytest.raises(ParseError, match="could not be parsed: '/Root'"):
        run_isolated(broken, None, timeout_s=60)


def test_a_crashed_child_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="stopped unexpectedly"):
        run_isolated(crash, None, timeout_s=60)


def test_memory_cap_stops_a_hungry_parse() -> None:
    with pytest.raises(ParseError, match="more memory than allowed"):
        run_isolated(hog, None, timeout_s=60, max_memory_mb=256)
