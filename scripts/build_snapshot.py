"""Rebuild the bundled OpenF1 snapshot (data/openf1/snapshot/) from two public recordings.

    python scripts/build_snapshot.py NEW_DIR OLD_DIR

NEW_DIR holds the complete 2023-2025 recording (meetings, sessions, session_result,
starting_grid); OLD_DIR the earlier one (meetings, sessions). Each record of NEW_DIR is kept as it
is, in its order; a meeting or session that only OLD_DIR has (the 2023 pre-season testing meeting
1140 and its three sessions) is appended after them, unchanged. session_result.json and
starting_grid.json are copied byte for byte. data/README.md records the sources and their blobs.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

KEYS = {"meetings": "meeting_key", "sessions": "session_key"}
TARGET = Path(__file__).resolve().parent.parent / "data" / "openf1" / "snapshot"


def merge(new: list[dict], old: list[dict], key: str) -> list[dict]:
    seen = {record[key] for record in new}
    return new + [record for record in old if record[key] not in seen]


def main(new_dir: Path, old_dir: Path) -> None:
    TARGET.mkdir(parents=True, exist_ok=True)
    for endpoint, key in KEYS.items():
        new = json.loads((new_dir / f"{endpoint}.json").read_text(encoding="utf-8"))
        old = json.loads((old_dir / f"{endpoint}.json").read_text(encoding="utf-8"))
        merged = merge(new, old, key)
        text = json.dumps(merged, ensure_ascii=False, indent=1)
        (TARGET / f"{endpoint}.json").write_text(text + "\n", encoding="utf-8")
        print(f"{endpoint}: {len(new)} + {len(merged) - len(new)} from {old_dir.name}")
    for name in ("session_result.json", "starting_grid.json"):
        shutil.copyfile(new_dir / name, TARGET / name)
        print(f"{name}: copied")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    main(Path(sys.argv[1]), Path(sys.argv[2]))
