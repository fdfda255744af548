"""The security checks ``make test`` runs: bandit over src/, and the dependency audit,
which must say loudly when it could not reach its vulnerability database instead of
passing as if it had audited anything."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.databases import unavailable

ROOT = Path(__file__).resolve().parents[2]
AUDIT = ROOT / ".ci" / "dependency_audit.py"
MAKEFILE = ROOT / "Makefile"
# A proxy nobody listens on: the audit's requests fail at once, and no registry is asked.
DEAD_PROXY = "http://127.0.0.1:9"


def make_recipe(target: str) -> str:
    match = re.search(rf"^{target}:.*\n((?:\t.*\n|\n)*)", MAKEFILE.read_text(), re.MULTILINE)
    assert match is not None, f"Makefile has no {target} target"
    return match.group(0)


def test_make_test_runs_the_security_checks_and_installs_promtool() -> None:
    assert re.search(r"^test:.*\bsecurity\b", MAKEFILE.read_text(), re.MULTILINE)
    assert re.search(r"^security:.*\bbandit\b.*\baudit\b", MAKEFILE.read_text(), re.MULTILINE)
    assert re.search(r"^install-test:.*\bpromtool\b", MAKEFILE.read_text(), re.MULTILINE)
    assert "apt-get install" in make_recipe("promtool") and "CI" in make_recipe("promtool")


def bandit_run(*args: str) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec("bandit") is None:
        unavailable("bandit is not installed (pip install '.[test]')")
    return subprocess.run(
        [sys.executable, "-m", "bandit", "-q", "-c", "pyproject.toml", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )


def test_bandit_passes_over_src() -> None:
    """As the Makefile runs it: the PostgreSQL SQL builder without B608 (see pyproject)."""
    search = "src/ragd/store/postgres/search.py"
    for args in (("-r", "src", "-x", search), ("-s", "B608", search)):
        result = bandit_run(*args)
        assert result.returncode == 0, result.stdout + result.stderr


def test_bandit_is_not_a_formality(tmp_path: Path) -> None:
    risky = tmp_path / "risky.py"
    risky.write_text(
        "import subprocess\n\ndef run(cmd: str) -> None:\n    subprocess.call(cmd, shell=True)\n"
    )
    result = bandit_run(str(risky))
    assert result.returncode == 1 and "B602" in result.stdout


def run_audit(**env: str) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec("pip_audit") is None:
        unavailable("pip-audit is not installed (pip install '.[test]')")
    environment = {**os.environ, "HTTPS_PROXY": DEAD_PROXY, "HTTP_PROXY": DEAD_PROXY, **env}
    environment.pop("NO_PROXY", None)
    environment.pop("no_proxy", None)
    return subprocess.run(
        [sys.executable, str(AUDIT)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment,
        timeout=300,
        check=False,
    )


def test_an_unreachable_audit_database_is_announced_not_passed() -> None:
    result = run_audit(DEPENDENCY_AUDIT_REQUIRED="")
    assert "dependency audit could not reach its database" in result.stderr
    assert "THE DEPENDENCIES WERE NOT AUDITED" in result.stderr
    assert "no known vulnerabilities" not in result.stdout + result.stderr
    assert result.returncode == 0, "offline, the build warns instead of failing forever"


def test_an_unreachable_audit_database_fails_when_the_audit_is_required() -> None:
    result = run_audit(DEPENDENCY_AUDIT_REQUIRED="true")
    assert "dependency audit could not reach its database" in result.stderr
    assert result.returncode == 1
