"""Fail when a dbt node of this project is not described in yml (dbt-checkpoint's checks, offline).

dbt packages cannot be downloaded here, so instead of dbt-checkpoint this script runs
``dbt parse`` in-process (target path in a temporary directory: the working tree's target/ is
left alone) and reads the manifest. "Described" means:

- models and snapshots: a non-empty description, at least one column documented, and every
  documented column has a description;
- seeds: a non-empty description and every column of the CSV header documented with one;
- sources: the source and each of its tables have a description; documented columns too;
- macros of this project: a description, and every argument of the ``{% macro %}`` signature
  documented with a description;
- singular data tests (tests/dbt/*.sql): a description.

Usage: ``python scripts/check_dbt_docs.py [--project-dir DIR] [--manifest target/manifest.json]``.
Exit 0 when everything is described; 1 with one line per finding otherwise.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import tempfile
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
MACRO_SIGNATURE = re.compile(r"{%-?\s*macro\s+(\w+)\s*\((.*?)\)\s*-?%}", re.DOTALL)


def parse_manifest(project_dir: Path) -> dict:
    """``dbt parse`` of the project into a temporary target path; the manifest as a dict."""
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from dbt.cli.main import dbtRunner

    with tempfile.TemporaryDirectory(prefix="racemap-dbt-parse-") as tmp:
        result = dbtRunner().invoke(
            [
                "--quiet",
                "--no-use-colors",
                "parse",
                "--project-dir",
                str(project_dir),
                "--profiles-dir",
                str(project_dir),
                "--target-path",
                str(Path(tmp) / "target"),
                "--log-path",
                str(Path(tmp) / "logs"),
            ]
        )
        if not result.success:
            raise SystemExit(f"dbt parse failed: {result.exception}")
        return json.loads((Path(tmp) / "target" / "manifest.json").read_text())


def _described(item: dict) -> bool:
    return bool((item.get("description") or "").strip())


def _undescribed_columns(columns: dict) -> list[str]:
    return [name for name, column in columns.items() if not _described(column)]


def macro_arguments(macro_sql: str, name: str) -> list[str]:
    """Argument names of ``{% macro name(a, b=1) %}``."""
    for found, args in MACRO_SIGNATURE.findall(macro_sql):
        if found == name:
            return [a.split("=")[0].strip() for a in args.split(",") if a.split("=")[0].strip()]
    return []


def seed_header(project_dir: Path, node: dict) -> list[str]:
    path = Path(node.get("root_path") or project_dir) / node["original_file_path"]
    with path.open(newline="") as handle:
        return next(csv.reader(handle), [])


def findings(manifest: dict, project_dir: Path = PROJECT_DIR) -> list[str]:
    """One line per undescribed node, column or argument of the project (not of packages)."""
    project = manifest["metadata"]["project_name"]
    out: list[str] = []

    for node in manifest["nodes"].values():
        if node["package_name"] != project:
            continue
        kind, name, where = node["resource_type"], node["name"], node["original_file_path"]
        label = f"{kind} {name} ({where})"
        columns = node.get("columns") or {}
        if kind in {"model", "snapshot"}:
            if not _described(node):
                out.append(f"{label}: no description")
            if not columns:
                out.append(f"{label}: no documented columns")
            out += [
                f"{label}: column {c} has no description" for c in _undescribed_columns(columns)
            ]
        elif kind == "seed":
            if not _described(node):
                out.append(f"{label}: no description")
            for column in seed_header(project_dir, node):
                if column not in columns:
                    out.append(f"{label}: column {column} is not documented")
            out += [
                f"{label}: column {c} has no description" for c in _undescribed_columns(columns)
            ]
        elif kind == "test" and not node.get("test_metadata") and not _described(node):
            out.append(f"{label}: no description")  # singular data tests (generic ones: no)

    sources_seen: set[str] = set()
    for source in manifest["sources"].values():
        if source["package_name"] != project:
            continue
        where = source["original_file_path"]
        if source["source_name"] not in sources_seen:
            sources_seen.add(source["source_name"])
            if not (source.get("source_description") or "").strip():
                out.append(f"source {source['source_name']} ({where}): no description")
        label = f"source table {source['source_name']}.{source['name']} ({where})"
        if not _described(source):
            out.append(f"{label}: no description")
        out += [
            f"{label}: column {c} has no description"
            for c in _undescribed_columns(source.get("columns") or {})
        ]

    for macro in manifest["macros"].values():
        if macro["package_name"] != project:
            continue
        label = f"macro {macro['name']} ({macro['original_file_path']})"
        if not _described(macro):
            out.append(f"{label}: no description")
        documented = {a["name"]: a for a in macro.get("arguments") or []}
        for argument in macro_arguments(macro.get("macro_sql") or "", macro["name"]):
            if argument not in documented:
                out.append(f"{label}: argument {argument} is not documented")
            elif not _described(documented[argument]):
                out.append(f"{label}: argument {argument} has no description")
    return sorted(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR)
    parser.add_argument("--manifest", type=Path, help="read this manifest instead of dbt parse")
    args = parser.parse_args(argv)
    project_dir = args.project_dir.resolve()
    if args.manifest:
        manifest = json.loads(args.manifest.read_text())
    else:
        manifest = parse_manifest(project_dir)
    problems = findings(manifest, project_dir)
    for line in problems:
        print(f"undescribed: {line}", file=sys.stderr)
    if problems:
        print(
            f"{len(problems)} dbt docs finding(s): describe them in the yml next to the file",
            file=sys.stderr,
        )
        return 1
    print("dbt docs: every model, seed, snapshot, source, macro and data test is described")
    return 0


if __name__ == "__main__":
    sys.exit(main())
