"""Fail when a notebook and its paired script differ (jupytext; the pairing is in pyproject.toml).

Every notebook is a pair: ``notebooks/<name>.py`` in jupytext's percent format (the source, which
ruff lints) and ``notebooks/<name>.ipynb`` (what papermill runs). This check renders each
``.ipynb`` as the paired script with the project's jupytext configuration and compares the text
with the ``.py`` on disk, so it fails whichever side was edited alone, in any clone (``jupytext
--sync`` decides by modification times, which a clone does not keep).

Usage: ``python scripts/check_notebook_pairs.py [NOTEBOOK ...]`` (.ipynb or .py; default every
notebook in notebooks/). Fix: ``.venv/bin/jupytext --sync notebooks/<name>.py`` after editing
the script (or ``notebooks/<name>.ipynb`` after editing the notebook in JupyterLab).
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

import jupytext
from jupytext.config import load_jupytext_config
from jupytext.formats import long_form_multiple_formats

PROJECT_DIR = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = PROJECT_DIR / "notebooks"


def _script_format(config, notebook: Path) -> dict:
    formats = long_form_multiple_formats(config.default_formats(str(notebook)) if config else None)
    scripts = [f for f in formats if f.get("extension") == ".py"]
    if len(scripts) != 1:
        raise SystemExit("pyproject.toml [tool.jupytext]: pair every notebook with one .py script")
    return scripts[0]


def problems(path: Path) -> list[str]:
    """What differs between ``path``'s notebook and its script (empty when they agree)."""
    notebook, script = path.with_suffix(".ipynb"), path.with_suffix(".py")
    for side in (notebook, script):
        if not side.is_file():
            return [f"{side.name} is missing: each notebook is an .ipynb and a .py"]
    config = load_jupytext_config(str(notebook.resolve()))
    fmt = _script_format(config, notebook.resolve())
    expected = jupytext.writes(jupytext.read(notebook, config=config), fmt=fmt, config=config)
    actual = script.read_text(encoding="utf-8")
    if expected == actual:
        return []
    diff = difflib.unified_diff(
        actual.splitlines(keepends=True),
        expected.splitlines(keepends=True),
        fromfile=str(script),
        tofile=f"{notebook} (as {fmt.get('format_name', 'script')})",
    )
    return [f"{notebook.name} and {script.name} differ:\n" + "".join(diff)]


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    paths = paths or sorted(NOTEBOOKS_DIR.glob("*.ipynb")) + sorted(NOTEBOOKS_DIR.glob("*.py"))
    pairs = sorted({p.with_suffix("") for p in paths})
    failed = 0
    for pair in pairs:
        shown = (
            pair.resolve().relative_to(PROJECT_DIR)
            if pair.resolve().is_relative_to(PROJECT_DIR)
            else pair
        )
        for problem in problems(pair):
            print(f"{shown}: {problem}", file=sys.stderr)
            failed += 1
    if failed:
        print("fix: .venv/bin/jupytext --sync notebooks/<name>.py", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
