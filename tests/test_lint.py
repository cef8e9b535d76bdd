"""`make lint` and the pre-commit hooks: they fail on what they exist to catch.

Every check runs on copies in a temporary directory (the working tree is never touched): an
unformatted Python file, a badly formatted model, undocumented dbt nodes, a notebook with
outputs. That the repository itself passes is `make lint`, which `make test` runs first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from conftest import SERVER_URL
from nbformat.v4 import new_code_cell, new_notebook, new_output

from racemap.db import parse_database_url
from racemap.paths import PROJECT_DIR

BIN = Path(sys.executable).parent
DBT_FILES = ("dbt_project.yml", "profiles.yml", ".dbtignore", ".sqlfluff", ".sqlfluffignore")
DBT_FOLDERS = ("models", "macros", "seeds", "snapshots", "tests/dbt")
LIBPQ = {"PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "DBT_ENV_SECRET_PGPASSWORD"}


def _run(args: list, cwd: Path, tmp: Path) -> subprocess.CompletedProcess:
    # sqlfluff's dbt templater connects to the PG* database: the test server's, never what an
    # earlier test left in this process's environment (a fixture database, dropped since).
    server = {k: v for k, v in parse_database_url(SERVER_URL).libpq_env().items() if v}
    env = {
        **{k: v for k, v in os.environ.items() if k not in LIBPQ},
        **server,
        "DBT_TARGET_PATH": str(tmp / "dbt-target"),
        "DBT_LOG_PATH": str(tmp / "dbt-logs"),
    }
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def dbt_copy(tmp_path_factory) -> Path:
    """The dbt project (and its lint config) copied, with deliberate mistakes added."""
    project = tmp_path_factory.mktemp("lint") / "project"
    project.mkdir()
    for name in DBT_FILES:
        shutil.copy(PROJECT_DIR / name, project / name)
    for folder in DBT_FOLDERS:
        shutil.copytree(PROJECT_DIR / folder, project / folder)
    marts = project / "models" / "marts"
    # Lint: uppercase keywords, implicit alias, leading comma, no import CTE indentation.
    (marts / "badly_formatted.sql").write_text(
        "SELECT m.race_id\n  , m.season yr\nFROM {{ ref('race_openf1_mapping') }} m\n"
    )
    # Docs: a model nobody described, one described without columns, one with a blank column.
    (marts / "undocumented_model.sql").write_text(
        "select race_id from {{ ref('race_openf1_mapping') }}\n"
    )
    (marts / "columnless_model.sql").write_text(
        "select race_id from {{ ref('race_openf1_mapping') }}\n"
    )
    (marts / "blank_column_model.sql").write_text(
        "select race_id from {{ ref('race_openf1_mapping') }}\n"
    )
    (marts / "_lint_test__models.yml").write_text(
        "version: 2\n\nmodels:\n"
        "  - name: columnless_model\n    description: Described, but no column is.\n"
        "  - name: blank_column_model\n    description: A column without a description.\n"
        "    columns:\n      - name: race_id\n"
    )
    (project / "macros" / "undocumented_macro.sql").write_text(
        "{% macro undocumented_macro(first, second=1) %}{{ first }}{% endmacro %}\n"
    )
    (project / "seeds" / "undocumented_seed.csv").write_text("code,label\na,b\n")
    return project


def test_make_test_runs_lint_first():
    dry = subprocess.run(
        ["make", "-n", "test"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    ).stdout
    lines = dry.splitlines()
    pytest_at = next(i for i, line in enumerate(lines) if "-m pytest" in line)
    for check in (
        "ruff check",
        "ruff format --check",
        "nbstripout --keep-id --verify",
        "scripts/check_notebooks.py",
        "sqlfluff lint",
        "scripts/check_dbt_docs.py",
        "scripts/check_env_table.py --check",
    ):
        at = next((i for i, line in enumerate(lines) if check in line), None)
        assert at is not None and at < pytest_at, f"{check} does not run before pytest"


def test_pre_commit_runs_the_same_local_tools():
    config = yaml.safe_load((PROJECT_DIR / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    hooks = config["repos"][0]["hooks"]
    assert {hook["language"] for hook in hooks} == {"system"}
    recipe = (PROJECT_DIR / "Makefile").read_text().split("\nlint:", 1)[1].split("\n\n", 1)[0]
    for hook in hooks:
        tool = next(w for w in hook["entry"].split() if w.startswith(".venv/bin/"))
        called = hook["entry"].split(tool, 1)[1].split()[0] if tool.endswith("python") else tool
        called = called.replace(".venv/bin/", "$(BIN)/")
        assert called in recipe, f"pre-commit hook {hook['id']} is not in make lint"
    validate = _run([BIN / "pre-commit", "validate-config"], PROJECT_DIR, PROJECT_DIR)
    assert validate.returncode == 0, validate.stdout + validate.stderr


def test_ruff_fails_on_unformatted_python(tmp_path):
    config = PROJECT_DIR / "pyproject.toml"
    clean = tmp_path / "clean.py"
    clean.write_text('import os\n\nprint(os.sep, {"a": 1})\n')
    messy = tmp_path / "messy.py"
    messy.write_text("import os, sys\nprint( {'a':1} )\n")
    for args in (["check"], ["format", "--check"]):
        ok = _run([BIN / "ruff", *args, "--config", config, clean], tmp_path, tmp_path)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        bad = _run([BIN / "ruff", *args, "--config", config, messy], tmp_path, tmp_path)
        assert bad.returncode == 1, bad.stdout + bad.stderr


def test_sqlfluff_fails_on_a_badly_formatted_model(dbt_copy, tmp_path):
    model = "models/marts/badly_formatted.sql"
    good = "models/marts/race_openf1_mapping.sql"
    result = _run([BIN / "sqlfluff", "lint", "--format", "json", model, good], dbt_copy, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    files = {Path(f["filepath"]).as_posix(): f for f in json.loads(result.stdout)}
    assert set(files) == {model, good}
    codes = {v["code"] for v in files[model]["violations"]}
    assert {"CP01", "AL02", "LT04"} <= codes, codes  # uppercase, implicit alias, leading comma
    assert "TMP" not in codes and "PRS" not in codes  # templated and parsed: real lint findings
    assert files[good]["violations"] == []


def test_docs_check_lists_each_undescribed_node(dbt_copy, tmp_path):
    result = _run(
        [sys.executable, PROJECT_DIR / "scripts" / "check_dbt_docs.py", "--project-dir", dbt_copy],
        dbt_copy,
        tmp_path,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    found = sorted(
        line.removeprefix("undescribed: ")
        for line in result.stderr.splitlines()
        if line.startswith("undescribed: ")
    )
    assert found == sorted(
        [
            "macro undocumented_macro (macros/undocumented_macro.sql): no description",
            "macro undocumented_macro (macros/undocumented_macro.sql): argument first is not "
            "documented",
            "macro undocumented_macro (macros/undocumented_macro.sql): argument second is not "
            "documented",
            "model blank_column_model (models/marts/blank_column_model.sql): column race_id has "
            "no description",
            "model columnless_model (models/marts/columnless_model.sql): no documented columns",
            "model undocumented_model (models/marts/undocumented_model.sql): no description",
            "model undocumented_model (models/marts/undocumented_model.sql): no documented columns",
            "model badly_formatted (models/marts/badly_formatted.sql): no description",
            "model badly_formatted (models/marts/badly_formatted.sql): no documented columns",
            "seed undocumented_seed (seeds/undocumented_seed.csv): no description",
            "seed undocumented_seed (seeds/undocumented_seed.csv): column code is not documented",
            "seed undocumented_seed (seeds/undocumented_seed.csv): column label is not documented",
        ]
    )  # and nothing of the project itself: every one of its nodes is described


def test_docs_check_flags_sources_and_tables_without_description():
    sys.path.insert(0, str(PROJECT_DIR / "scripts"))
    try:
        from check_dbt_docs import findings
    finally:
        sys.path.remove(str(PROJECT_DIR / "scripts"))
    source = {
        "package_name": "p",
        "source_name": "raw",
        "source_description": "",
        "name": "events",
        "description": "",
        "columns": {"id": {"description": " "}},
        "original_file_path": "models/_sources.yml",
    }
    manifest = {"metadata": {"project_name": "p"}, "nodes": {}, "macros": {}}
    manifest["sources"] = {"source.p.raw.events": source}
    assert findings(manifest) == [
        "source raw (models/_sources.yml): no description",
        "source table raw.events (models/_sources.yml): column id has no description",
        "source table raw.events (models/_sources.yml): no description",
    ]


def _notebook(path: Path, *, tagged: bool, executed: bool) -> Path:
    cell = new_code_cell("x = 1")
    if tagged:
        cell.metadata["tags"] = ["parameters"]
    show = new_code_cell("x")
    if executed:
        show.execution_count = 1
        show.outputs = [new_output("execute_result", {"text/plain": "1"}, execution_count=1)]
    nbformat.write(new_notebook(cells=[cell, show]), path)
    return path


def test_notebook_checks_fail_on_outputs_and_a_missing_parameters_cell(tmp_path):
    sys.path.insert(0, str(PROJECT_DIR / "scripts"))
    try:
        from check_notebooks import main, problems
    finally:
        sys.path.remove(str(PROJECT_DIR / "scripts"))
    assert main([str(p) for p in sorted((PROJECT_DIR / "notebooks").glob("*.ipynb"))]) == 0

    executed = _notebook(tmp_path / "executed.ipynb", tagged=False, executed=True)
    assert problems(executed) == [
        "a notebook outside notebooks/ (executed copies go to reports/)",
        "0 cells tagged 'parameters' (papermill needs exactly one)",
        "cell 1 has outputs",
        "cell 1 has an execution count",
    ]
    strip = _run([BIN / "nbstripout", "--keep-id", "--verify", executed], tmp_path, tmp_path)
    assert strip.returncode == 1
    clean = _notebook(tmp_path / "clean.ipynb", tagged=True, executed=False)
    strip = _run([BIN / "nbstripout", "--keep-id", "--verify", clean], tmp_path, tmp_path)
    assert strip.returncode == 0, strip.stdout + strip.stderr


def test_env_table_check_fails_when_the_readme_differs_from_the_settings(tmp_path):
    """The README's table of environment variables is the settings' definition, generated."""
    readme = tmp_path / "README.md"
    text = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    script = PROJECT_DIR / "scripts" / "check_env_table.py"
    readme.write_text(text, encoding="utf-8")
    same = _run([sys.executable, script, "--check", "--readme", readme], tmp_path, tmp_path)
    assert same.returncode == 0, same.stdout + same.stderr
    # A variable missing from the table (the settings define it), and one the settings lack.
    for changed in (
        text.replace("| `RACEMAP_DATA_DOCS_RUNS` |", "| `RACEMAP_DATA_DOCS_RUN` |"),
        text.replace("| `CI` |", "| `RACEMAP_GONE` | read by nothing |\n| `CI` |", 1),
    ):
        readme.write_text(changed, encoding="utf-8")
        bad = _run([sys.executable, script, "--check", "--readme", readme], tmp_path, tmp_path)
        assert bad.returncode == 1 and "environment table differs" in bad.stderr
        assert readme.read_text(encoding="utf-8") == changed  # --check writes nothing
    fixed = _run([sys.executable, script, "--readme", readme], tmp_path, tmp_path)
    assert fixed.returncode == 0 and readme.read_text(encoding="utf-8") == text
