"""Fail when a stored notebook is not clean: the source notebooks live in notebooks/, without
outputs or execution counts, each with exactly one cell tagged ``parameters`` (papermill's).
Executed copies belong under reports/ (git-ignored), never next to the sources.

Usage: ``python scripts/check_notebooks.py [NOTEBOOK ...]`` (default: notebooks/*.ipynb).
nbstripout (``--keep-id --verify``, in ``make lint`` and pre-commit) strips what this reports.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

PROJECT_DIR = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = PROJECT_DIR / "notebooks"


def problems(path: Path) -> list[str]:
    found: list[str] = []
    resolved = path.resolve()
    if resolved.parent != NOTEBOOKS_DIR:
        found.append("a notebook outside notebooks/ (executed copies go to reports/)")
    nb = nbformat.read(resolved, as_version=4)
    if "papermill" in nb.metadata:
        found.append("an executed copy (papermill metadata): store the source notebook")
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    if len(tagged) != 1:
        found.append(f"{len(tagged)} cells tagged 'parameters' (papermill needs exactly one)")
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            found.append(f"cell {i} has outputs")
        if cell.get("execution_count") is not None:
            found.append(f"cell {i} has an execution count")
    return found


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    paths = paths or sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
    failed = 0
    for path in paths:
        for problem in problems(path):
            print(f"{path}: {problem}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
