"""The README and docs/ say what the code does: settings, their defaults, CLI commands.

Why: the README's configuration table and command examples are the operator's contract,
and they drift silently when a setting or an option is added, renamed or changes default.
These tests read the Markdown as a reader sees it and compare it with the real
``Settings`` and the real ``ragd --help`` output, so a change to either one fails here
until the other follows.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import pytest
import typer
from typer.testing import CliRunner

from ragd.cli.app import app
from ragd.config import DEFAULT_METRICS_ALLOW, Settings, secret_file_variables
from tests.helpers import cli_env_vars

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]

# Defaults the table states in words because the value is computed or long. Every other
# default is either a value in backticks (parsed as the environment variable would be) or
# says that nothing is set.
DEFAULTS_IN_WORDS: dict[str, tuple[str, Any]] = {
    "database_url": ("SQLite file in the data dir", None),
    "metrics_allow": ("loopback and private networks", list(DEFAULT_METRICS_ALLOW)),
}
NOTHING_SET: dict[str, tuple[Any, ...]] = {"unset": (None,), "none": (None, [])}

runner = CliRunner()


# -- the settings table ---------------------------------------------------------------------


def readme_settings_table() -> dict[str, str]:
    """``RAGD_NAME -> default cell`` of the table in the README's Configuration section."""
    section = README.read_text(encoding="utf-8").split("\n## Configuration\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for match in re.finditer(r"^\| `(RAGD_[A-Z0-9_]+)` \| ([^|]*) \|", section, re.MULTILINE):
        assert match[1] not in rows, f"{match[1]} appears twice in the README's table"
        rows[match[1]] = match[2].strip()
    assert rows, "no settings table found under '## Configuration' in README.md"
    return rows


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No RAGD_ variable from the developer's shell: defaults are the code's own."""
    for name in [name for name in os.environ if name.startswith("RAGD_")]:
        monkeypatch.delenv(name)
    return monkeypatch


def value_from_environment(monkeypatch: pytest.MonkeyPatch, field: str, raw: str) -> Any:
    """What ``RAGD_<FIELD>=raw`` becomes, read exactly as at start-up (no .env file)."""
    with monkeypatch.context() as patch:
        patch.setenv(f"RAGD_{field.upper()}", raw)
        return getattr(Settings(_env_file=None), field)


def test_every_setting_is_in_the_readme_table_with_its_default(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    table = readme_settings_table()
    defaults = Settings(_env_file=None)
    problems = []
    for field in Settings.model_fields:
        name = f"RAGD_{field.upper()}"
        default = getattr(defaults, field)
        cell = table.get(name)
        if cell is None:
            problems.append(f"{name} is a setting but not in the README's table")
            continue
        if field in DEFAULTS_IN_WORDS:
            words, value = DEFAULTS_IN_WORDS[field]
            if (cell, default) != (words, value):
                problems.append(f"{name}: README says {cell!r}, the code's default is {default!r}")
        elif cell in NOTHING_SET:
            if default not in NOTHING_SET[cell]:
                problems.append(f"{name}: README says {cell}, the code's default is {default!r}")
        elif match := re.fullmatch(r"`([^`]*)`", cell):
            documented = value_from_environment(clean_environment, field, match[1])
            if documented != default:
                problems.append(
                    f"{name}: README's default {match[1]!r} reads as {documented!r}, "
                    f"the code's default is {default!r}"
                )
        else:
            problems.append(f"{name}: default {cell!r} is neither `a value` nor unset/none")
    assert not problems, "\n".join(problems)


# Read by the test suite, not by ragd; the Development section documents them.
TEST_HARNESS_VARIABLES = {"RAGD_UI_SCREENSHOTS", "RAGD_TEST_DATABASE_URL", "RAGD_DATASETS_DIR"}


def test_every_ragd_name_in_the_docs_is_a_setting() -> None:
    """A ``RAGD_`` name is a setting, or the env var of a CLI option (``[env var: ...]``)."""
    settings = {f"RAGD_{field.upper()}" for field in Settings.model_fields}
    settings |= set(secret_file_variables()) | TEST_HARNESS_VARIABLES
    option_env_vars = cli_env_vars()
    problems = [
        f"README's table lists {name}, which is no setting"
        for name in readme_settings_table()
        if name not in settings
    ]
    for path in DOCS:
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for name in re.findall(r"\bRAGD_[A-Z0-9_]*[A-Z0-9]\b", line):
                if name not in settings | option_env_vars:
                    problems.append(
                        f"{path.name}:{lineno}: {name} is neither a setting nor an option's env var"
                    )
    assert not problems, "\n".join(problems)


# -- the command line -----------------------------------------------------------------------


@dataclass(frozen=True)
class Help:
    """What ``ragd ... --help`` shows: subcommands (of a group), options, their env vars."""

    commands: frozenset[str]
    options: frozenset[str]
    env_vars: frozenset[str]


def panel_rows(output: str, title: str) -> Iterator[str]:
    """The rows of one of rich's help panels (``╭─ Options ─...``), box drawing removed."""
    inside = False
    for line in output.splitlines():
        if line.startswith(f"╭─ {title} "):
            inside = True
        elif line.startswith("╰"):
            inside = False
        elif inside and line.startswith("│"):
            # "│ eval   Measure ... │": one space of padding inside the border; a row that
            # continues the one above starts with more.
            yield line[1:].rstrip().removesuffix("│")[1:]


def help_output(typer_app: typer.Typer, path: tuple[str, ...]) -> str:
    """``<path> --help`` as a user sees it (wide enough that no option name wraps)."""
    result = runner.invoke(typer_app, [*path, "--help"], env={"TERMINAL_WIDTH": "200"})
    assert result.exit_code == 0, f"ragd {' '.join(path)} --help failed:\n{result.output}"
    return result.output


@cache
def cli_help(path: tuple[str, ...]) -> Help:
    """Run ``ragd <path> --help`` and read it."""
    return read_help(help_output(app, path))


def read_help(output: str) -> Help:
    """The Commands and Options panels of one ``--help`` output."""
    commands = set()
    for row in panel_rows(output, "Commands"):
        if row and not row[0].isspace():
            commands.add(row.split()[0])
    options = set()
    for row in panel_rows(output, "Options"):
        # "*  --collection  -c  <str>  ..." or "   --create  --no-create  <bool>  ...";
        # wrapped description lines start with spaces and no option.
        for token in row.split():
            if token == "*":
                continue
            if not token.startswith("-"):
                break
            options.add(token)
    assert options, f"no options read from this --help:\n{output}"
    env_vars = re.findall(r"\[env var: ([A-Z0-9_]+)\]", output)
    return Help(frozenset(commands), frozenset(options), frozenset(env_vars))


def all_commands(path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command path in ``--help``, groups and their subcommands."""
    for name in sorted(cli_help(path).commands):
        yield (*path, name)
        yield from all_commands((*path, name))


@dataclass(frozen=True)
class Mention:
    """One place where the docs show a ``ragd`` command line."""

    where: str
    words: tuple[str, ...]
    extra_options: tuple[str, ...] = ()  # named in a comment right below the command


def ragd_words(tokens: list[str]) -> tuple[str, ...] | None:
    """The words after the ``ragd`` program in one shell command, or None if it runs none.

    ``ragd`` counts as the program at the start of a command (after ``VAR=value``), after a
    ``--`` (``kubectl exec ... -- ragd``), or after another program's non-option word
    (``docker compose exec api ragd``); not as an option's value (``kubectl -n ragd``).
    """
    for i, token in enumerate(tokens):
        if token != "ragd" and not token.endswith("/bin/ragd"):
            continue
        before = tokens[i - 1] if i else ""
        if before.startswith("-") and before != "--":
            continue
        if i + 1 < len(tokens) and "://" in tokens[i + 1]:
            continue  # a name given to a server (``claude mcp add ... ragd http://...``)
        words = []
        for word in tokens[i + 1 :]:
            if word in {"|", "||", "&&", ";", ">", ">>", "2>&1"}:
                break
            words.append(word)
        return tuple(words) if words else None
    return None


def shell_tokens(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=True)
    except ValueError:  # an unbalanced quote in an example with placeholders
        return text.split("#", 1)[0].split()


def mentions(path: Path) -> Iterator[Mention]:
    """Every ``ragd`` command line in one Markdown file: code blocks and inline code."""
    in_block = False
    last: Mention | None = None
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        where = f"{path.name}:{lineno}"
        if line.lstrip().startswith("```"):
            if last is not None:
                yield last
            in_block, last = not in_block, None
            continue
        if in_block:
            stripped = line.strip()
            if stripped.startswith("#") and last is not None:
                # "#   --collection NAME names the collection, --keep keeps it": options
                # explained in a comment belong to the command above them.
                named = tuple(re.findall(r"(?<![\w-])--[a-z][\w-]*", stripped))
                last = Mention(last.where, last.words, last.extra_options + named)
                continue
            words = ragd_words(shell_tokens(line))
            if words is not None:
                if last is not None:
                    yield last
                last = Mention(where, words)
            continue
        for span in re.findall(r"`([^`]+)`", line):
            words = ragd_words(shell_tokens(span))
            if words is not None:
                yield Mention(where, words)


def resolve(mention: Mention) -> tuple[tuple[str, ...], list[str]]:
    """The command path a mention names, and what in it ``--help`` does not know."""
    path: tuple[str, ...] = ()
    problems = []
    words = list(mention.words)
    while words and cli_help(path).commands:
        word = words.pop(0)
        if word.startswith("-"):
            problems.append(f"option {word} before a subcommand of 'ragd {' '.join(path)}'")
            continue
        if word not in cli_help(path).commands:
            problems.append(f"'ragd {' '.join((*path, word))}' is no command")
            return path, problems
        path = (*path, word)
    known = cli_help(path).options
    for word in [*words, *mention.extra_options]:
        option = word.split("=", 1)[0]
        if option.startswith("-") and option != "-" and option not in known:
            problems.append(f"'ragd {' '.join(path)}' has no option {option}")
    return path, problems


def test_every_command_and_option_the_docs_show_exists() -> None:
    problems = []
    seen = 0
    for path in DOCS:
        for mention in mentions(path):
            seen += 1
            problems += [f"{mention.where}: {problem}" for problem in resolve(mention)[1]]
    assert seen > 10, "found hardly any ragd commands in the docs: is the parser broken?"
    assert not problems, "\n".join(problems)


def test_every_command_in_help_is_in_the_readme() -> None:
    shown = set()
    for mention in mentions(README):
        path = resolve(mention)[0]
        shown |= {path[:depth] for depth in range(1, len(path) + 1)}  # a group, by its command
    commands = list(all_commands())
    assert ("serve",) in commands and ("keys", "create") in commands
    missing = [" ".join(path) for path in commands if path not in shown]
    assert not missing, "commands in ragd --help that the README never shows: " + ", ".join(missing)


def test_the_parser_reads_commands_as_a_reader_does(tmp_path: Path) -> None:
    """The Markdown reading above, on the shapes the docs use (so a pass means something)."""
    page = tmp_path / "page.md"
    page.write_text(
        "Run `ragd serve --workers 2`, not `ragd` alone or `ragd:handbook`.\n"
        "```sh\n"
        "RAGD_DATA_DIR=/tmp .venv/bin/ragd eval data --mode all   # a comment --not-this\n"
        "#   --keep keeps it\n"
        "kubectl -n ragd create secret generic ragd-secrets\n"
        "kubectl -n ragd exec deploy/api -- ragd keys list\n"
        "docker compose exec api ragd migrate\n"
        "```\n",
        encoding="utf-8",
    )
    assert [(m.words, m.extra_options) for m in mentions(page)] == [
        (("serve", "--workers", "2"), ()),
        (("eval", "data", "--mode", "all"), ("--keep",)),
        (("keys", "list"), ()),
        (("migrate",), ()),
    ]
    bad = Mention("x", ("keys", "rotate"))
    assert resolve(bad)[1] == ["'ragd keys rotate' is no command"]
    assert resolve(Mention("x", ("serve", "--port=9000", "--colour")))[1] == [
        "'ragd serve' has no option --colour"
    ]


def test_help_is_read_as_typer_prints_it() -> None:
    """Options, short names, negations and env vars of a real Typer app's ``--help``."""
    demo = typer.Typer()

    @demo.command()
    def serve(
        key: Annotated[str, typer.Option("--key", "-k", envvar="RAGD_DEMO_KEY")] = "",
        create: Annotated[bool, typer.Option(help="Make it. " * 30)] = True,
    ) -> None:
        """Serve."""

    @demo.command()
    def other() -> None:
        """Make this a group of two commands."""

    assert read_help(help_output(demo, ())).commands == {"serve", "other"}
    found = read_help(help_output(demo, ("serve",)))
    assert found.options == {"--key", "-k", "--create", "--no-create", "--help"}
    assert found.env_vars == {"RAGD_DEMO_KEY"}
