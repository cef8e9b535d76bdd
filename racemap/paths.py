"""Where the project's files live."""

from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_DIR / "data"
NOTEBOOKS_DIR = PROJECT_DIR / "notebooks"
DEFAULT_REPORTS_DIR = PROJECT_DIR / "reports"
EMBEDDED_PGDATA = PROJECT_DIR / ".racemap" / "pgdata"
SNAPSHOT_DIR = DATA_DIR / "openf1" / "snapshot"
