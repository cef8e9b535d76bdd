"""Every notebook is a jupytext pair (.py source, .ipynb for papermill) and the check catches drift.

The check (``scripts/check_notebook_pairs.py``, in ``make lint`` and pre-commit) runs here on
copies in a temporary project that has the repository's ``pyproject.toml`` (its
``[tool.jupytext]`` pairing): never on the working tree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from racemap.paths import NOTEBOOKS_DIR, PROJECT_DIR

BIN = Path(sys.executable).parent
sys.path.insert(0, str(PROJECT_DIR / "scripts"))
try:
    from check_notebook_pairs import main, problems
finally:
    sys.path.remove(str(PROJECT_DIR / "scripts"))


@pytest.fixture
def pair(tmp_path) -> Path:
    """A copy of notebooks/load_openf1.{ipynb,py} in a project with the same jupytext config."""
    shutil.copy(PROJECT_DIR / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "notebooks").mkdir()
    for suffix in (".ipynb", ".py"):
        shutil.copy(NOTEBOOKS_DIR / f"load_openf1{suffix}", tmp_path / "notebooks")
    return tmp_path / "notebooks" / "load_openf1"


def test_every_notebook_of_the_repository_is_a_pair_in_sync():
    notebooks = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
    assert [p.stem for p in notebooks] == ["load_openf1", "mapping_report", "race_session"]
    assert all(p.with_suffix(".py").is_file() for p in notebooks)
    assert main([]) == 0


def test_a_script_edited_alone_fails_until_synced(pair):
    script = pair.with_suffix(".py")
    script.write_text(script.read_text().replace("refresh = False", "refresh = True"))
    (found,) = problems(pair)
    assert "load_openf1.ipynb and load_openf1.py differ" in found
    assert "-refresh = True" in found and "+refresh = False" in found
    assert main([str(script)]) == 1
    synced = subprocess.run(
        [BIN / "jupytext", "--sync", "--quiet", script], capture_output=True, text=True
    )
    assert synced.returncode == 0, synced.stderr
    assert problems(pair) == []
    assert "refresh = True" in pair.with_suffix(".ipynb").read_text()


def test_a_notebook_edited_alone_fails(pair):
    notebook = pair.with_suffix(".ipynb")
    notebook.write_text(notebook.read_text().replace("run_id = None", "run_id = 'x'"))
    (found,) = problems(pair)
    assert "+run_id = 'x'" in found
    assert main([str(notebook)]) == 1


def test_a_notebook_without_its_script_fails(pair):
    pair.with_suffix(".py").unlink()
    assert problems(pair) == ["load_openf1.py is missing: each notebook is an .ipynb and a .py"]
