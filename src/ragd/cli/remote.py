"""Push files to a remote ragd through its batch endpoint (``ragd ingest --server``).

Files go in batches of at most ``batch_size`` files and ``batch_bytes`` bytes, each as
one ``POST /v1/collections/{id}/documents:batch``. A batch answered 429 or 503 is sent
again after the server's ``Retry-After`` (a lost connection after a short backoff), at
most ``attempts`` times; a batch refused as too large (413: the server's bounds are
tighter than ours) is split in two until it fits, so a single file over the server's cap
ends as that file's rejection. Any other refusal of a whole batch (a bad key, a
collection out of reach) stops the run: every other batch would get it too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from ragd import __version__
from ragd.errors import RagdError

RETRYABLE = frozenset({429, 503})
_DEFAULT_WAIT_S = 5.0
_TIMEOUT_S = 300.0  # a batch of 100 MB over a slow link


class RemoteError(RagdError):
    """The server refused the run as a whole (its problem ``detail``), or is gone."""


@dataclass
class Outcome:
    """Per-file results of a run, by the batch endpoint's item statuses."""

    created: list[Path] = field(default_factory=list)
    duplicates: list[Path] = field(default_factory=list)
    rejected: list[tuple[Path, str]] = field(default_factory=list)
    retries: int = 0


Notify = Callable[[str], None]
Advance = Callable[[int], None]


class RemoteIngest:
    """One run against ``server`` with ``key`` (None: the keyless loopback mode)."""

    def __init__(
        self,
        server: str,
        key: str | None,
        *,
        batch_size: int,
        batch_bytes: int,
        attempts: int = 8,
        notify: Notify = lambda _message: None,
    ) -> None:
        headers = {"User-Agent": f"ragd-cli/{__version__}"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.http = httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=_TIMEOUT_S)
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.attempts = attempts
        self.notify = notify

    def close(self) -> None:
        self.http.close()

    def collection(self, ref: str, create: bool) -> str:
        """The id of collection ``ref`` (a name or an id), created when missing."""
        found = self._send("GET", f"/v1/collections/{quote(ref, safe='')}")
        if found.status_code == 404 and create:
            found = self._send("POST", "/v1/collections", json={"name": ref})
        _raise_for_problem(found)
        collection_id: str = found.json()["id"]
        return collection_id

    def push(self, collection_id: str, files: list[Path], advance: Advance) -> Outcome:
        """Send ``files`` in batches; ``advance(n)`` after each answered batch."""
        outcome = Outcome()
        for batch in self._batches(files):
            self._push_batch(collection_id, batch, outcome, advance)
        return outcome

    def _batches(self, files: list[Path]) -> Iterator[list[Path]]:
        batch: list[Path] = []
        size = 0
        for path in files:
            length = path.stat().st_size
            if batch and (len(batch) >= self.batch_size or size + length > self.batch_bytes):
                yield batch
                batch, size = [], 0
            batch.append(path)
            size += length
        if batch:
            yield batch

    def _push_batch(
        self, collection_id: str, batch: list[Path], outcome: Outcome, advance: Advance
    ) -> None:
        response = self._post_files(collection_id, batch, outcome)
        if response.status_code == 413 and len(batch) > 1:
            self.notify(f"the server refused a batch of {len(batch)} as too large; splitting it")
            half = len(batch) // 2
            self._push_batch(collection_id, batch[:half], outcome, advance)
            self._push_batch(collection_id, batch[half:], outcome, advance)
            return
        if response.status_code == 413:
            outcome.rejected.append((batch[0], _detail(response)))
            advance(1)
            return
        _raise_for_problem(response)
        for item in response.json()["items"]:
            path = batch[item["index"]]
            if item["status"] == "created":
                outcome.created.append(path)
            elif item["status"] == "duplicate":
                outcome.duplicates.append(path)
            else:
                outcome.rejected.append((path, item["problem"]["detail"]))
        advance(len(batch))

    def _post_files(
        self, collection_id: str, batch: list[Path], outcome: Outcome
    ) -> httpx.Response:
        path = f"/v1/collections/{collection_id}/documents:batch"
        for attempt in range(1, self.attempts + 1):
            with ExitStack() as stack:
                files = [("file", (p.name, stack.enter_context(p.open("rb")))) for p in batch]
                response = self._send("POST", path, files=files, retry=attempt < self.attempts)
            if response.status_code not in RETRYABLE or attempt == self.attempts:
                return response
            wait = retry_after(response)
            outcome.retries += 1
            self.notify(
                f"server answered {response.status_code} ({_detail(response)}); "
                f"retrying in {wait:g} s (attempt {attempt + 1} of {self.attempts})"
            )
            time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, method: str, path: str, *, retry: bool = True, **kwargs: Any) -> httpx.Response:
        """One request; a connection that fails is tried again after a short backoff."""
        for attempt in range(1, self.attempts + 1):
            try:
                return self.http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if not retry or attempt == self.attempts:
                    raise RemoteError(f"cannot reach {self.http.base_url}: {exc}") from None
                wait = min(2.0**attempt, 60.0)
                self.notify(
                    f"cannot reach the server ({type(exc).__name__}); retrying in {wait:g} s"
                )
                time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover


def retry_after(response: httpx.Response) -> float:
    """Seconds the server asks to wait: ``Retry-After`` as seconds or as an HTTP date."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return _DEFAULT_WAIT_S
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return _DEFAULT_WAIT_S
    return max(when.timestamp() - time.time(), 0.0)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    detail = body.get("detail") if isinstance(body, dict) else None
    return str(detail) if detail else f"HTTP {response.status_code}"


def _raise_for_problem(response: httpx.Response) -> None:
    if response.is_success:
        return
    raise RemoteError(f"the server answered {response.status_code}: {_detail(response)}")
