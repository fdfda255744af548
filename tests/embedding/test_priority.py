"""PriorityGate: a waiting query goes before the next slice of document embedding."""

from __future__ import annotations

import threading
import time

from ragd.embedding.priority import PriorityGate


def wait_until(predicate: object, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_waiting_foreground_goes_before_waiting_background() -> None:
    gate = PriorityGate(max_wait_s=60)
    order: list[str] = []

    def background() -> None:
        with gate.background():
            order.append("document slice")

    def foreground() -> None:
        with gate.foreground():
            order.append("query")

    with gate.background():  # the worker's current slice
        slow = threading.Thread(target=background)
        slow.start()
        query = threading.Thread(target=foreground)
        query.start()
        wait_until(lambda: gate._foreground_waiting == 1)
    slow.join(30)
    query.join(30)
    assert order == ["query", "document slice"]


def test_background_is_not_starved_by_a_stream_of_queries() -> None:
    gate = PriorityGate(max_wait_s=0.05)
    stop = threading.Event()

    def queries() -> None:
        while not stop.is_set():
            with gate.foreground():
                time.sleep(0.001)

    clients = [threading.Thread(target=queries) for _ in range(4)]
    for client in clients:
        client.start()
    try:
        for _ in range(5):
            with gate.background():
                pass
    finally:
        stop.set()
        for client in clients:
            client.join(30)


def test_foreground_activity_is_remembered_for_a_while() -> None:
    gate = PriorityGate(busy_window_s=3600)
    assert not gate.foreground_active()
    with gate.foreground():
        pass
    assert gate.foreground_active()
