"""End to end: a warm ``racemap run`` side by side with the floor of the tools it starts.

Measured in ``rounds`` alternating rounds (the order flips every round, so a shared machine's
drift hits both sides alike), every command in a child process, wall time:

- **the floor**: the bare start-ups of the tools a run needs, each doing the least it can:
  ``dbt build`` of a one-model project on a scratch database, ``python -c "import
  great_expectations"``, and papermill executing a one-cell notebook; each after ``import
  racemap``, which leaves jsonschema's IRI parsers out as in every racemap process;
- **the warm run**: ``racemap run --offline --seasons 2023-2025`` on a scratch database holding
  the demo races, which a first run (reported, not counted) has loaded, mapped and documented.
  Every run writes to the same reports directory, as a user's runs do.

Before the rounds each floor command runs once uncounted too (dbt's partial parsing, the file
cache), so both sides are warm. Reported: every round, the medians, the warm run's stages (its
``summary.json`` ``stage_seconds``; "outside stages" is the rest of its wall time: interpreter
start-up, imports, exit) and the ratio of the warm run's median to the floor's.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from racemap.db import Database
from racemap.errors import RacemapError
from racemap.paths import PROJECT_DIR
from racemap.verdict import EXIT_ATTENTION, EXIT_OK

from .scratch import Scratch

DEFAULT_ROUNDS = 3
# The bundled snapshot's seasons: without --seasons a run asks for 2023 to this year.
SNAPSHOT_SEASONS = "2023-2025"
WARM_COMMAND = f"racemap run --offline --seasons {SNAPSHOT_SEASONS}"
# Exit codes of a run that did its whole job: 0 ok, 3 attention (a race needs a person);
# 1 is a failed run, 2 a usage error.
FINISHED = (EXIT_OK, EXIT_ATTENTION)

_DBT_PROJECT = """\
name: racemap_bench_floor
version: "1.0"
config-version: 2
profile: racemap_bench_floor
"""
_PROFILES = """\
racemap_bench_floor:
  target: floor
  outputs:
    floor:
      type: postgres
      host: "{{ env_var('PGHOST') }}"
      port: "{{ env_var('PGPORT') | as_number }}"
      user: "{{ env_var('PGUSER') }}"
      password: "{{ env_var('DBT_ENV_SECRET_PGPASSWORD', '') }}"
      dbname: "{{ env_var('PGDATABASE') }}"
      schema: floor
      threads: 1
"""
_NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "one-cell",
            "metadata": {},
            "outputs": [],
            "source": "1 + 1",
        }
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


def _after_racemap(code: str) -> list[str]:
    """``python -c code`` after ``import racemap`` (a hundredth of a second): the floor starts as
    a racemap process does, without jsonschema's IRI parsers (racemap/__init__.py), so it does
    not pay the second they cost and the warm run does not (the tools' own entry points:
    dbt.cli.main:cli, papermill's)."""
    return [sys.executable, "-c", f"import racemap; {code}"]


def floor_commands(workdir: Path) -> dict[str, list[str]]:
    """The floor's steps, in the order they run; ``workdir`` holds the dbt project and notebook."""
    project = workdir / "dbt_floor"
    (project / "models").mkdir(parents=True, exist_ok=True)
    (project / "dbt_project.yml").write_text(_DBT_PROJECT)
    (project / "profiles.yml").write_text(_PROFILES)
    (project / "models" / "one.sql").write_text("select 1 as one\n")
    notebook = workdir / "one_cell.ipynb"
    notebook.write_text(json.dumps(_NOTEBOOK))
    return {
        "dbt_build": [
            *_after_racemap("from dbt.cli.main import cli; cli()"),
            "build",
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
        ],
        "import_great_expectations": _after_racemap("import great_expectations"),
        "papermill": [
            *_after_racemap("from papermill.__main__ import papermill; papermill()"),
            str(notebook),
            str(workdir / "one_cell.out.ipynb"),
            "--cwd",
            str(workdir),
        ],
    }


FLOOR_LABELS = {
    "dbt_build": "dbt build (one-model project)",
    "import_great_expectations": "python -c 'import great_expectations'",
    "papermill": "papermill (one-cell notebook)",
}


def _timed(command: list[str], env: dict, cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, done


def _last_line(done: subprocess.CompletedProcess) -> str:
    lines = (done.stderr or "").strip().splitlines() or (done.stdout or "").strip().splitlines()
    return lines[-1] if lines else f"exit code {done.returncode}"


def _floor_round(commands: dict[str, list[str]], env: dict, cwd: Path) -> dict[str, float]:
    seconds = {}
    for name, command in commands.items():
        took, done = _timed(command, env, cwd)
        if done.returncode != 0:
            raise RacemapError(f"floor step {name} failed: {_last_line(done)}")
        seconds[name] = round(took, 3)
    return seconds


def racemap_run(
    db: Database, reports: Path, variables: dict | None, extra: list[str] | None = None
) -> dict:
    """``racemap run --offline --seasons 2023-2025`` on ``db`` in a child process (``extra``:
    more options)."""
    command = [sys.executable, "-m", "racemap.cli", *WARM_COMMAND.split()[1:]]
    command += ["--reports-dir", str(reports), *(extra or [])]
    for name, value in (variables or {}).items():
        command += ["--var", f"{name}={value}"]
    took, done = _timed(command, {**os.environ, "DATABASE_URL": db.url}, PROJECT_DIR)
    summary_file = reports / "summary.json"
    if done.returncode not in FINISHED or not summary_file.is_file():
        raise RacemapError(f"{WARM_COMMAND} failed in the benchmark: {_last_line(done)}")
    summary = json.loads(summary_file.read_text())
    stages = {name: float(s) for name, s in summary["stage_seconds"].items()}
    return {
        "wall_seconds": round(took, 3),
        "exit_code": done.returncode,
        "stage_seconds": stages,
        "outside_stages_seconds": round(took - sum(stages.values()), 3),
        "slowest_stage": max(stages, key=stages.get),
        "mapped": summary.get("mapped"),
        "updates_applied": summary.get("updates_applied"),
    }


def demo_database(scratch: Scratch, name: str) -> Database:
    """A scratch database holding the demo races."""
    from racemap.demo import create_demo_tables

    db = scratch.create(name)
    with db.transaction() as conn:
        create_demo_tables(conn)
    return db


@dataclass
class WarmDatabase:
    """The demo database that a first run (not counted) has loaded, mapped and documented, with
    the reports directory its runs write to: the end-to-end and devices parts of one bench
    share it, so the second part starts warm instead of paying for a first run of its own."""

    reports: Path
    db: Database | None = None
    first_run: dict | None = None
    filled_by: str = ""

    def fill(self, scratch: Scratch, part: str, rounds: int, variables: dict | None, log) -> dict:
        """The first run, once; a later part reuses it. Returns what the first run reported.
        ``rounds``: the part's warm runs, at least one."""
        if rounds < 1:
            raise RacemapError(f"--rounds {rounds}: at least one round")
        if self.db is None:
            db = demo_database(scratch, part.replace(" ", "_"))
            log(f"{part}: {WARM_COMMAND}, the first run (fills the database; not counted) ...")
            self.first_run = racemap_run(db, self.reports, variables)
            self.db, self.filled_by = db, part
        return {**self.first_run, "part": self.filled_by}


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def paired_saving(with_it: list[float], without_it: list[float]) -> tuple[float, list[float]]:
    """What a device saves: each round's run without it minus the same round's run with it,
    and the median of those differences. A round's runs are back to back, so a half hour in
    which the machine is slower slows both alike; the difference of the two medians pairs runs
    of different rounds (a 5-round bench of the shared kernel on 2026-12-06: 0.83 s that way,
    1.49 s round by round, its rounds having saved 3.93, 1.77, 0.73, 0.61 and 1.49 s)."""
    savings = [round(b - a, 3) for a, b in zip(with_it, without_it, strict=True)]
    return _median(savings), savings


def bench_end_to_end(
    scratch: Scratch,
    variables: dict | None = None,
    rounds: int = DEFAULT_ROUNDS,
    log=print,
    warm: WarmDatabase | None = None,
) -> dict:
    """The floor and the warm run, ``rounds`` times each, alternating; medians and the ratio.
    ``warm``: the filled demo database to share with the devices part (else one of its own)."""
    with tempfile.TemporaryDirectory(prefix="racemap-bench-e2e-") as tmp:
        work = Path(tmp)
        warm = warm or WarmDatabase(reports=work / "reports")
        first = warm.fill(scratch, "end to end", rounds, variables, log)
        db, reports = warm.db, warm.reports
        floor_db = scratch.create("floor")
        commands = floor_commands(work)
        floor_env = {
            **os.environ,
            **floor_db.libpq_env(),
            "DBT_TARGET_PATH": str(work / "dbt_floor" / "target"),
            "DBT_LOG_PATH": str(work / "dbt_floor" / "logs"),
        }
        log("end to end: the floor, once uncounted ...")
        warmup = _floor_round(commands, floor_env, work)
        floor_rounds, warm_rounds = [], []
        for n in range(rounds):
            order = ("floor", "warm") if n % 2 == 0 else ("warm", "floor")
            for side in order:
                log(f"end to end: round {n + 1} of {rounds}: {side} ...")
                if side == "floor":
                    floor_rounds.append(_floor_round(commands, floor_env, work))
                else:
                    warm_rounds.append(racemap_run(db, reports, variables))
    totals = [round(sum(r.values()), 3) for r in floor_rounds]
    warm = [r["wall_seconds"] for r in warm_rounds]
    stages = list(warm_rounds[-1]["stage_seconds"])
    floor_median = _median(totals)
    warm_median = _median(warm)
    return {
        "database": f"scratch databases on {scratch.server.display}",
        "rounds": rounds,
        "order": "alternating: floor first in odd rounds, the warm run first in even ones",
        "first_run": first,
        "floor": {
            "steps": {
                name: {
                    "label": FLOOR_LABELS[name],
                    "seconds": [r[name] for r in floor_rounds],
                    "median_seconds": _median([r[name] for r in floor_rounds]),
                }
                for name in commands
            },
            "uncounted_first_round": warmup,
            "total_seconds": totals,
            "median_seconds": floor_median,
        },
        "warm": {
            "command": WARM_COMMAND,
            "runs": warm_rounds,
            "seconds": warm,
            "median_seconds": warm_median,
            "median_stage_seconds": {
                stage: _median([r["stage_seconds"].get(stage, 0.0) for r in warm_rounds])
                for stage in stages
            },
            "median_outside_stages_seconds": _median(
                [r["outside_stages_seconds"] for r in warm_rounds]
            ),
        },
        "ratio_warm_to_floor": round(warm_median / floor_median, 2) if floor_median else None,
    }
