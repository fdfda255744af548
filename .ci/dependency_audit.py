"""The dependency audit behind ``make audit``: pip-audit over the installed environment.

pip-audit needs its vulnerability database (PyPI's JSON API) over the network, which a
build machine may not have. The outcomes, and what each does to the build:

- audited, no known vulnerability: pass;
- audited, vulnerabilities found: fail, with the list (ignore one only with a reason, in
  ``.ci/audit-ignore.txt``);
- the database could not be reached: NOT a pass. A loud banner says the dependencies were
  not audited, and the build goes on, since a build that can never pass offline is no
  use; ``DEPENDENCY_AUDIT_REQUIRED=true`` (CI with network access) makes it a failure;
- pip-audit failed in any other way: fail.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

IGNORE_FILE = Path(__file__).with_name("audit-ignore.txt")
# What requests and urllib3 say when the database is out of reach.
_UNREACHABLE = re.compile(
    r"ConnectionError|ProxyError|ConnectTimeout|ReadTimeout|SSLError|Max retries exceeded"
    r"|Name or service not known|Temporary failure in name resolution|Network is unreachable"
)


def ignored() -> list[str]:
    """Vulnerability ids listed in the ignore file (``ID  reason`` per line)."""
    if not IGNORE_FILE.exists():
        return []
    ids = []
    for line in IGNORE_FILE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            vuln_id, _, reason = line.strip().partition(" ")
            if not reason.strip():
                sys.exit(f"{IGNORE_FILE.name}: {vuln_id} needs a reason on its line")
            ids.append(vuln_id)
    return ids


def banner(lines: list[str]) -> None:
    width = max(len(line) for line in lines) + 4
    print("!" * width, file=sys.stderr)
    for line in lines:
        print(f"! {line.ljust(width - 4)} !", file=sys.stderr)
    print("!" * width, file=sys.stderr)


def unreachable(reason: str, *, required: bool) -> int:
    """Say loudly that nothing was audited; a failure only when the audit is required."""
    banner(
        [
            "dependency audit could not reach its database (PyPI's JSON API):",
            f"  {reason}",
            "THE DEPENDENCIES WERE NOT AUDITED. Run `make audit` with network access.",
            "failing the build (DEPENDENCY_AUDIT_REQUIRED=true)"
            if required
            else "not failing the build (set DEPENDENCY_AUDIT_REQUIRED=true to fail it)",
        ]
    )
    return 1 if required else 0


def main() -> int:
    required = os.environ.get("DEPENDENCY_AUDIT_REQUIRED", "").lower() in ("1", "true", "yes")
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "audit.json"
        command = [
            sys.executable,
            *("-m", "pip_audit", "--skip-editable", "--progress-spinner", "off"),
            *("--format", "json", "--output", str(report)),
            *(arg for vuln in ignored() for arg in ("--ignore-vuln", vuln)),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        data = json.loads(report.read_text()) if report.exists() else None
    if data is None:
        reason = _UNREACHABLE.search(result.stderr)
        if reason:
            return unreachable(reason.group(0), required=required)
        print(result.stderr[-4000:], file=sys.stderr)
        print("dependency audit failed to run (see above)", file=sys.stderr)
        return 1
    found = [
        (dep["name"], dep["version"], vuln)
        for dep in data.get("dependencies", [])
        for vuln in dep.get("vulns", [])
    ]
    skipped = [dep["name"] for dep in data.get("dependencies", []) if dep.get("skip_reason")]
    if found:
        print(f"dependency audit: {len(found)} known vulnerabilities", file=sys.stderr)
        for name, version, vuln in found:
            fixes = ", ".join(vuln.get("fix_versions", [])) or "no fixed version"
            print(f"  {name} {version}: {vuln['id']} (fixed in: {fixes})", file=sys.stderr)
        return 1
    audited = len(data.get("dependencies", [])) - len(skipped)
    if audited == 0 and skipped:
        # A mirror that serves pip's simple index but not PyPI's JSON API answers every
        # lookup with "not found": nothing was audited, whatever the exit code says.
        return unreachable(
            f"no package found in the vulnerability database ({len(skipped)} looked up)",
            required=required,
        )
    print(f"dependency audit: {audited} packages audited, no known vulnerabilities")
    if skipped:
        print(f"  not on PyPI, not audited: {', '.join(sorted(skipped))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
