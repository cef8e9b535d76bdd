"""Rebuild the bundled OpenF1 snapshot (data/openf1/snapshot/) from public recordings.

    python scripts/build_snapshot.py NEW_DIR OLD_DIR
    python scripts/build_snapshot.py race-data RACE_DATA_DIR

The schedule: NEW_DIR holds the complete 2023-2025 recording (meetings, sessions, session_result,
starting_grid); OLD_DIR the earlier one (meetings, sessions). Each record of NEW_DIR is kept as
it is, in its order; a meeting or session that only OLD_DIR has (the 2023 pre-season testing
meeting 1140 and its three sessions) is appended after them, unchanged. session_result.json and
starting_grid.json are copied byte for byte.

The race data: RACE_DATA_DIR is the shared collection of recorded race sessions (its
``sources_manifest.json`` names each file's repository, commit, path and git blob; every file is
checked against its blob first). For each race-data endpoint of the registry
(racemap/openf1/endpoints.py), its files (``<endpoint>__session_<key>[__driver_<n>].json``,
``<endpoint>_upto_austin.csv``) are read, per-driver files concatenated into a session-level
answer, CSV rows turned into JSON values by the endpoint's record model (text fields stay text,
the rest become numbers or booleans: ``1.0`` stays the float pandas wrote, which the model reads
as the whole number 1), every record otherwise kept as recorded (weather dates as pandas wrote
them). Where two sources hold the same (endpoint, session), the one with more records wins
(session 9606's laps: the per-driver files, which include lap 1). One JSON file per endpoint, one
record per line, sessions in key order; ``race_data_sources.csv`` records which file gave what.
data/README.md records the sources and their licences.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import sys
import types
import typing
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from racemap.openf1 import endpoints  # noqa: E402

KEYS = {"meetings": "meeting_key", "sessions": "session_key"}
TARGET = ROOT / "data" / "openf1" / "snapshot"
SOURCES_CSV = "race_data_sources.csv"
# Licences as SOURCES.md states them. br-g/openf1's MongoDB sample is left out: not API output
# (epoch-millisecond dates, Extended JSON wrappers) and CC BY-NC-SA.
LICENCES = {
    "naveentvelu/f1-live-commentator": "none stated",
    "cwgbittencourt/F1.OpenF1.DatasetBuilder": "Apache-2.0",
    "eddmann/f1-picks-2026": "MIT",
    "RivaroFarrelino/F1-Mexican-GP-2025-Winner-Model-Prediction": "MIT",
}
JSON_FILE = re.compile(r"^(?P<endpoint>[a-z_]+)__session_(?P<session>\d+)(__driver_\d+)?\.json$")
CSV_FILE = re.compile(r"^(?P<endpoint>[a-z_]+)_upto_austin\.csv$")


# -- the schedule ----------------------------------------------------------------------------------
def merge(new: list[dict], old: list[dict], key: str) -> list[dict]:
    seen = {record[key] for record in new}
    return new + [record for record in old if record[key] not in seen]


def build_schedule(new_dir: Path, old_dir: Path) -> None:
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


# -- the race data ---------------------------------------------------------------------------------
def git_blob(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _is_text(model, name: str) -> bool:
    field = model.model_fields.get(name)
    if field is None:
        return False
    annotation = field.annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return str in typing.get_args(annotation)
    return annotation is str


def csv_value(model, name: str, text: str) -> object:
    """A CSV cell as the JSON value OpenF1 sent: "" is null, text fields stay text, "True" /
    "False" are booleans, numbers are numbers as written ("1.0" stays a float)."""
    if text == "":
        return None
    if _is_text(model, name) or name.startswith("date"):
        return text
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_source(path: Path, endpoint) -> list[dict]:
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            return [
                {k: csv_value(endpoint.model, k, v) for k, v in row.items()}
                for row in csv.DictReader(handle)
            ]
    records = json.loads(path.read_text(encoding="utf-8"))
    return records if isinstance(records, list) else [records]


def race_data_files(source_dir: Path) -> list[tuple[Path, dict]]:
    """(file, manifest entry) of every race-data file of a licensed source, each checked
    against its git blob."""
    manifest = json.loads((source_dir / "sources_manifest.json").read_text(encoding="utf-8"))
    found = []
    for entry in sorted(manifest, key=lambda e: e["dest"]):
        if entry["repo"] not in LICENCES:
            continue
        path = source_dir / entry["dest"]
        match = JSON_FILE.match(path.name) or CSV_FILE.match(path.name)
        if not match or match["endpoint"] not in endpoints.BY_NAME:
            continue
        if not endpoints.get(match["endpoint"]).race_data:
            continue
        if git_blob(path) != entry["blob"]:
            raise SystemExit(f"{path}: not the blob {entry['blob']} of {entry['repo']}")
        found.append((path, entry))
    return found


def collect(source_dir: Path):
    """{endpoint: {session_key: (repo, records, files)}}: the fuller source per session."""
    candidates: dict[tuple[str, int, str], tuple[list, list]] = defaultdict(lambda: ([], []))
    for path, entry in race_data_files(source_dir):
        endpoint = endpoints.get((JSON_FILE.match(path.name) or CSV_FILE.match(path.name))[1])
        by_session: dict[int, list] = defaultdict(list)
        for record in read_source(path, endpoint):
            by_session[record["session_key"]].append(record)
        for session_key, rows in by_session.items():
            records, files = candidates[(endpoint.name, session_key, entry["repo"])]
            records.extend(rows)
            files.append((entry, len(rows)))
    chosen: dict[str, dict[int, tuple]] = defaultdict(dict)
    for (name, session_key, repo), (records, files) in sorted(candidates.items()):
        best = chosen[name].get(session_key)
        if best is None or len(records) > len(best[1]):
            chosen[name][session_key] = (repo, records, files)
    return chosen


def write_records(path: Path, records: list[dict]) -> None:
    lines = ",\n".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in records)
    path.write_text(f"[\n{lines}\n]\n", encoding="utf-8")


def build_race_data(source_dir: Path) -> None:
    chosen = collect(source_dir)
    provenance = []
    for endpoint in endpoints.RACE_DATA:
        sessions = chosen.get(endpoint.name, {})
        target = TARGET / endpoint.snapshot_file
        if not sessions:
            target.unlink(missing_ok=True)
            continue
        records = [r for key in sorted(sessions) for r in sessions[key][1]]
        write_records(target, records)
        for key in sorted(sessions):
            repo, rows, files = sessions[key]
            for entry, count in files:
                provenance.append(
                    {
                        "snapshot_file": endpoint.snapshot_file,
                        "session_key": key,
                        "records": count,
                        "repository": repo,
                        "commit": entry["commit"],
                        "path": entry["path"],
                        "git_blob": entry["blob"],
                        "licence": LICENCES[repo],
                    }
                )
        print(
            f"{endpoint.snapshot_file}: {len(records)} records, {len(sessions)} sessions "
            f"({', '.join(str(k) for k in sorted(sessions))})"
        )
    with (TARGET / SOURCES_CSV).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(provenance[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(provenance)
    print(f"{SOURCES_CSV}: {len(provenance)} rows")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "race-data":
        build_race_data(Path(sys.argv[2]))
    elif len(sys.argv) == 3:
        build_schedule(Path(sys.argv[1]), Path(sys.argv[2]))
    else:
        sys.exit("\n".join(__doc__.strip().splitlines()[2:4]))
