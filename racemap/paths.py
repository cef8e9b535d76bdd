"""Where the project's files live."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
DATA_DIR = PROJECT_DIR / "data"
NOTEBOOKS_DIR = PROJECT_DIR / "notebooks"
GX_DIR = PROJECT_DIR / "gx"
DEFAULT_REPORTS_DIR = PROJECT_DIR / "reports"
EMBEDDED_PGDATA = PROJECT_DIR / ".racemap" / "pgdata"
SNAPSHOT_DIR = DATA_DIR / "openf1" / "snapshot"
