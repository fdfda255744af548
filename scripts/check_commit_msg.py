"""Check commit messages: a subject of at most 72 characters, a blank line, a body saying why.

Why a script: the subject is what ``git log --oneline``, ``git shortlog`` and review tools
show, and they cut it around 72 characters; the body is where the reason for a change lives
when the diff only shows what changed. pre-commit runs this as a ``commit-msg`` hook on the
message file (see ``.pre-commit-config.yaml``); ``--range A..B`` checks commits already
made, for a branch before it is merged.

Exempt: merges (git writes their message) and ``fixup!``/``squash!``/``amend!`` commits,
which ``git rebase --autosquash`` folds into the commit they name.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

MAX_SUBJECT = 72
# `git commit --verbose` appends the diff below this line; git drops it, and so do we.
SCISSORS = "# ------------------------ >8 ------------------------"
EXEMPT_PREFIXES = ("Merge ", "fixup! ", "squash! ", "amend! ")


def meaningful_lines(message: str) -> list[str]:
    """The lines git keeps: no comment lines, nothing below the scissors, no trailing space."""
    lines = []
    for line in message.splitlines():
        if line.startswith(SCISSORS):
            break
        if not line.startswith("#"):
            lines.append(line.rstrip())
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def problems(message: str) -> list[str]:
    """Everything wrong with one message; empty when it is fine (or exempt)."""
    lines = meaningful_lines(message)
    if not lines:
        return ["the message is empty"]
    subject = lines[0]
    if subject.startswith(EXEMPT_PREFIXES):
        return []
    found = []
    if len(subject) > MAX_SUBJECT:
        found.append(f"the subject has {len(subject)} characters; at most {MAX_SUBJECT}")
    if len(lines) < 2:
        found.append("there is no body: add a blank line, then say why the change is made")
    elif lines[1]:
        found.append("the second line must be blank (subject, blank line, body)")
    elif not any(line.strip() for line in lines[2:]):
        found.append("the body is empty: say why the change is made")
    return found


def messages_in_range(rev_range: str) -> list[tuple[str, str]]:
    """(short hash, message) of every commit in ``rev_range``, oldest first."""
    # A fixed git command found on PATH, as git hooks run it; the range is one argument.
    command = ["git", "log", "--reverse", "--format=%h%x00%B%x00", "--end-of-options", rev_range]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout  # noqa: S603
    fields = out.split("\x00")
    return [(fields[i].strip(), fields[i + 1]) for i in range(0, len(fields) - 1, 2) if fields[i]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("message_file", nargs="?", type=Path, help="the commit message file")
    parser.add_argument("--range", dest="rev_range", help="check the commits in A..B instead")
    args = parser.parse_args(argv)
    if args.rev_range:
        checked = messages_in_range(args.rev_range)
    elif args.message_file:
        checked = [(str(args.message_file), args.message_file.read_text(encoding="utf-8"))]
    else:
        parser.error("give a message file or --range")
    failed = False
    for name, message in checked:
        for problem in problems(message):
            failed = True
            print(f"{name}: {problem}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
