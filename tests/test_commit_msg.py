"""The commit-message check (scripts/check_commit_msg.py), run as git and pre-commit run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_commit_msg.py"
GOOD = "Check commit messages in a hook\n\nReview tools cut long subjects; the body says why.\n"


def check(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=cwd
    )


def check_message(tmp_path: Path, message: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "COMMIT_EDITMSG"
    path.write_text(message, encoding="utf-8")
    return check(str(path))


def test_subject_blank_line_and_body_pass(tmp_path: Path) -> None:
    assert check_message(tmp_path, GOOD).returncode == 0


def test_exactly_72_characters_pass_73_fail(tmp_path: Path) -> None:
    body = "\n\nThe body says why.\n"
    assert check_message(tmp_path, "x" * 72 + body).returncode == 0
    result = check_message(tmp_path, "x" * 73 + body)
    assert result.returncode == 1
    assert "73 characters; at most 72" in result.stderr


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ("Only a subject\n", "there is no body"),
        ("A subject\nglued to its body\n", "second line must be blank"),
        ("", "the message is empty"),
        ("# only git's comments\n", "the message is empty"),
    ],
)
def test_missing_parts_fail(tmp_path: Path, message: str, problem: str) -> None:
    result = check_message(tmp_path, message)
    assert result.returncode == 1
    assert problem in result.stderr


def test_git_comments_and_verbose_diff_are_ignored(tmp_path: Path) -> None:
    message = (
        "Subject\n\nWhy it changes.\n"
        "# Please enter the commit message for your changes.\n"
        "# ------------------------ >8 ------------------------\n"
        "diff --git a/x b/x\n" + "+" + "y" * 200 + "\n"
    )
    assert check_message(tmp_path, message).returncode == 0
    assert check_message(tmp_path, "Subject\n\n# only a comment below\n").returncode == 1


@pytest.mark.parametrize("prefix", ["Merge branch 'devx'", "fixup! Subject", "squash! Subject"])
def test_merges_and_autosquash_commits_are_exempt(tmp_path: Path, prefix: str) -> None:
    assert check_message(tmp_path, prefix + " " + "x" * 80 + "\n").returncode == 0


def test_range_checks_every_commit_of_a_real_repository(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, env=env, check=True, capture_output=True)

    git("init", "-q")
    git("commit", "-q", "--allow-empty", "-m", "Start")
    git("commit", "-q", "--allow-empty", "-m", GOOD)
    assert check("--range", "HEAD~1..HEAD", cwd=tmp_path).returncode == 0
    git("commit", "-q", "--allow-empty", "-m", "y" * 80)
    result = check("--range", "HEAD~2..HEAD", cwd=tmp_path)
    assert result.returncode == 1
    assert "80 characters" in result.stderr
    # Only the bad commit is named, twice: its length and its missing body.
    named = {line.split(":")[0] for line in result.stderr.splitlines()}
    assert len(result.stderr.splitlines()) == 2
    assert len(named) == 1
