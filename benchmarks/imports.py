"""Imports: what importing the CLI and the pipeline costs (``python -X importtime``).

And whether a heavy library (Great Expectations, dbt, papermill, pandas) is imported before the
stage that needs it: importing ``racemap.pipeline`` should load none of them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

from racemap.paths import PROJECT_DIR

HEAVY_MODULES = ("great_expectations", "dbt", "papermill", "pandas", "pgserver", "sqlalchemy")

_IMPORT_PROBE = """
import json, sys, time
t = time.perf_counter(); import racemap.cli; cli = time.perf_counter() - t
t = time.perf_counter(); import racemap.pipeline; pipeline = time.perf_counter() - t
heavy = sorted({m.split('.')[0] for m in sys.modules} & set(json.loads(sys.argv[1])))
print(json.dumps({"cli": cli, "pipeline": pipeline, "heavy": heavy}))
"""


def _importtime(
    module: str, env: dict, after: str | None = None
) -> tuple[float, list[tuple[str, float]]]:
    """``module``'s import time and its largest imports; ``after``: imported first, not counted."""
    code = f"import {after}; import {module}" if after else f"import {module}"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    total, children, pending = 0.0, [], []
    for line in done.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if not m:
            continue
        level, name, seconds = (len(m.group(2)) - 1) // 2, m.group(3), int(m.group(1)) / 1e6
        if level == 1:
            pending.append((name, seconds))
        elif level == 0:
            if name == module:
                total, children = seconds, pending
            pending = []
    heavy = sorted(children, key=lambda kv: -kv[1])[:4]
    return total, heavy


def bench_imports() -> dict:
    """Interpreter start-up, the imports of racemap.cli and racemap.pipeline, the heavy ones."""
    env = dict(os.environ)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", "pass"], cwd=PROJECT_DIR, env=env, capture_output=True, check=False
    )
    interpreter = time.perf_counter() - start
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, json.dumps(HEAVY_MODULES)],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    probe = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else {}
    out = {
        "interpreter_seconds": round(interpreter, 3),
        "import_racemap_cli_seconds": round(probe.get("cli", 0.0), 3),
        "import_racemap_pipeline_seconds": round(probe.get("pipeline", 0.0), 3),
        "heavy_modules_after_importing_pipeline": probe.get("heavy"),
        "importtime": {},
    }
    for module in (
        "racemap.pipeline",
        "racemap.mapping.dbt",
        "racemap.checks.validate",
        "racemap.openf1.loader",
    ):
        total, top = _importtime(module, env)
        out["importtime"][module] = {
            "seconds": round(total, 3),
            "largest": {name: round(s, 3) for name, s in top},
        }
    # What the stages import when they run (lazily), as a run imports them: after racemap, which
    # leaves jsonschema's IRI parsers out (racemap/__init__.py). Measured, for the record.
    for module, stage in (
        ("dbt.cli.main", "dbt_build / migrate"),
        ("great_expectations", "validate_raw / validate"),
        ("papermill", "load"),
    ):
        total, _top = _importtime(module, env, after="racemap")
        out["importtime"][module] = {"seconds": round(total, 3), "needed_by": stage}
    return out
