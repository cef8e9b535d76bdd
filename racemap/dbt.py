"""dbt, run in this process (dbtRunner): no second interpreter start-up per command."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import RacemapError
from .paths import PROJECT_DIR

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


@dataclass
class DbtOutcome:
    command: str
    success: bool
    failures: list[str]
    results: list


def _vars_arg(variables: dict | None) -> list[str]:
    return ["--vars", json.dumps(variables)] if variables else []


def project_dir() -> str:
    """The dbt project: this repository, or $RACEMAP_DBT_PROJECT_DIR (a copy with other seeds)."""
    return os.environ.get("RACEMAP_DBT_PROJECT_DIR") or str(PROJECT_DIR)


def invoke(args: list[str], variables: dict | None = None, quiet: bool = True) -> DbtOutcome:
    """Run one dbt command against the project; the caller has exported the PG* variables."""
    from dbt.cli.main import dbtRunner

    full = [
        *args,
        "--project-dir",
        project_dir(),
        "--profiles-dir",
        project_dir(),
        *_vars_arg(variables),
    ]
    if quiet:
        full = ["--quiet", "--no-use-colors", *full]
    result = dbtRunner().invoke(full)
    failures = []
    results = list(getattr(result.result, "results", None) or [])
    for item in results:
        status = str(getattr(item, "status", "")).lower()
        if status in {"error", "fail", "runtime error"}:
            node = getattr(item, "node", None)
            name = getattr(node, "name", None) or getattr(item, "unique_id", "?")
            message = (getattr(item, "message", "") or "").strip().splitlines()
            failures.append(f"{name}: {message[0] if message else status}")
    if not result.success and not failures:
        # dbt's first line is a heading ("Database Error"): the cause is on the next ones.
        lines = [line.strip() for line in str(result.exception or "").splitlines()]
        failures.append(" ".join(filter(None, lines))[:500] or f"dbt {args[0]} failed")
    return DbtOutcome(args[0], bool(result.success), failures, results)


def require(outcome: DbtOutcome) -> DbtOutcome:
    if not outcome.success:
        shown = "; ".join(outcome.failures[:5])
        more = f" (+{len(outcome.failures) - 5} more)" if len(outcome.failures) > 5 else ""
        raise RacemapError(f"dbt {outcome.command} failed: {shown}{more}")
    return outcome


def migrate(variables: dict | None = None) -> None:
    require(invoke(["run-operation", "migrate_races"], variables))


def build(variables: dict | None = None) -> DbtOutcome:
    """``dbt build`` without the unit tests: those check the rules with the project's own vars
    (``make test`` and CI run them); a run's vars are the user's."""
    return require(invoke(["build", "--exclude-resource-type", "unit_test"], variables))


def docs(reports_dir: Path | str, variables: dict | None = None) -> Path:
    """``dbt docs generate`` into ``<reports_dir>/dbt-docs``; returns its index.html.

    The site is the static one (``--static``): manifest and catalog are embedded in index.html,
    so it opens from the file system without a web server. manifest.json and catalog.json are
    copied beside it for tools. dbt's own target path is a temporary directory, so compiled SQL
    and run artefacts never land in the reports. Run after ``dbt build``: the catalog (column
    types, row counts) is read from the database the PG* variables point to.
    """
    out = Path(reports_dir) / "dbt-docs"
    with tempfile.TemporaryDirectory(prefix="racemap-dbt-docs-") as tmp:
        require(invoke(["docs", "generate", "--static", "--target-path", tmp], variables))
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(tmp) / "static_index.html", out / "index.html")
        for name in ("manifest.json", "catalog.json"):
            shutil.copyfile(Path(tmp) / name, out / name)
    return out / "index.html"
