"""What each concurrency device of a run saves: the warm run with it, and with it replaced by the
plain call (``racemap run --plain DEVICE``; racemap/pipeline.py's DEVICES), same rounds.

On a scratch database holding the demo races, a first run (not counted) loads, maps and
documents (the end-to-end part's, when both are measured in one bench: ``WarmDatabase``); then
``rounds`` rounds, each running the warm run once with every device and once
per device with that device replaced, in an order that rotates every round (a shared
machine's drift hits each configuration alike). Reported per device: the median wall time
without it, what it saved in each round (the run without it minus the run with every device,
of the same round) and the median of those, the saving; a device earns its keep when it saves
at least ``KEEP_SECONDS`` of the warm run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from racemap.pipeline import DEVICES

from .end_to_end import DEFAULT_ROUNDS, WarmDatabase, _median, paired_saving, racemap_run
from .scratch import Scratch

KEEP_SECONDS = 1.0
ALL = "every device"


def bench_devices(
    scratch: Scratch,
    variables: dict | None = None,
    rounds: int = DEFAULT_ROUNDS,
    log=print,
    warm: WarmDatabase | None = None,
) -> dict:
    """``warm``: the demo database the end-to-end part filled, when both are measured (else
    this part's own first run fills one)."""
    configurations = [ALL, *DEVICES]
    seconds: dict[str, list[float]] = {name: [] for name in configurations}
    with tempfile.TemporaryDirectory(prefix="racemap-bench-devices-") as tmp:
        warm = warm or WarmDatabase(reports=Path(tmp) / "reports")
        first = warm.fill(scratch, "devices", rounds, variables, log)
        db, reports = warm.db, warm.reports
        for n in range(rounds):
            shift = n % len(configurations)
            for name in configurations[shift:] + configurations[:shift]:
                log(f"devices: round {n + 1} of {rounds}: {name} ...")
                plain = [] if name == ALL else ["--plain", name]
                seconds[name].append(racemap_run(db, reports, variables, plain)["wall_seconds"])
    baseline = _median(seconds[ALL])
    devices = {}
    for name in DEVICES:
        saving, by_round = paired_saving(seconds[ALL], seconds[name])
        devices[name] = {
            "seconds_without": seconds[name],
            "median_without": _median(seconds[name]),
            "saving_by_round": by_round,
            "saving_seconds": saving,
            "keep": saving >= KEEP_SECONDS,
        }
    return {
        "database": f"a scratch database on {scratch.server.display}",
        "rounds": rounds,
        "first_run": first,
        "keep_when_saving_at_least_seconds": KEEP_SECONDS,
        "with_every_device": {"seconds": seconds[ALL], "median_seconds": baseline},
        "devices": devices,
    }


def devices_lines(report: dict) -> list[str]:
    from .report import _table

    rows = [
        [
            f"{ALL}",
            report["with_every_device"]["median_seconds"],
            "",
            "",
            ", ".join(f"{v:.2f}" for v in report["with_every_device"]["seconds"]),
        ]
    ]
    for name, d in report["devices"].items():
        rows.append(
            [
                f"plain {name}",
                d["median_without"],
                f"{d['saving_seconds']:+.2f} ({'keep' if d['keep'] else 'drop'})",
                ", ".join(f"{v:+.2f}" for v in d["saving_by_round"]),
                ", ".join(f"{v:.2f}" for v in d["seconds_without"]),
            ]
        )
    return [
        "",
        f"DEVICES — the warm run with each concurrency device replaced by the plain call; "
        f"{report['rounds']} rounds, rotating order; the saving is the median of the rounds' "
        f"own; kept when it saves at least "
        f"{report['keep_when_saving_at_least_seconds']:g} s (seconds)",
        _table(["run", "median", "saving", "saving by round", "rounds"], rows),
    ]
