"""The benchmark's report as text: one table per part, in the order they were measured."""

from __future__ import annotations

import importlib

# Every part, in the order racemap bench runs and prints them.
PARTS = ("requests", "race_data", "scales", "end_to_end", "devices", "pages", "memory", "imports")


def _table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_report(report: dict) -> str:
    out = [f"racemap bench — {report['machine']['cpus']} cores, {report['date']}"]
    for part in PARTS:
        if isinstance(report.get(part), dict) and "error" in report[part]:
            out.append(f"{part.upper()}: FAILED: {report[part]['error']}")
    req = report.get("requests") or {}
    if "racemap" in req:
        r, ref = req["racemap"], req["reference"]
        label = " (extrapolated)" if ref["extrapolated"] else ""
        out += [
            "",
            f"REQUESTS — OpenF1 seasons {req['seasons'][0]}-{req['seasons'][-1]}, "
            f"{req['races_in_seasons']} unmapped races, rate limit {req['rate_limit']}",
            _table(
                ["", "races", "requests", "seconds", "mapped"],
                [
                    [
                        "racemap (load)",
                        req["races_in_seasons"],
                        r["requests"],
                        r["load_seconds"],
                        "",
                    ],
                    [
                        "racemap (load + dbt build + apply)",
                        req["races_in_seasons"],
                        r["requests"],
                        r["seconds"],
                        r["mapped"],
                    ],
                    [
                        "per-race reference (measured)",
                        ref["races"],
                        ref["requests"],
                        ref["seconds"],
                        ref["mapped"],
                    ],
                    [
                        f"per-race reference, all races{label}",
                        req["races_in_seasons"],
                        ref["full_requests"],
                        ref["full_seconds"],
                        "",
                    ],
                ],
            ),
            f"ratio reference/racemap: requests ×{req['ratio']['requests']}, "
            f"time ×{req['ratio']['seconds_vs_load']} vs the load, "
            f"×{req['ratio']['seconds_vs_load_build_apply']} vs load + build + apply{label}",
            f"same races and keys mapped (on the reference's races): "
            f"{ref['same_mapping_as_racemap']}; server applied the filters: "
            f"{ref['server_filtered']}",
        ]
    out += race_data_lines(report.get("race_data") or {})
    sc = report.get("scales") or {}
    if sc.get("results") or sc.get("unfinished"):
        out += [
            "",
            "SCALES — dbt build (models + data tests, seeds and unit tests excluded, as a run "
            "builds) and apply per scale; matching model: int_races_matched_to_meetings, mapping "
            "model: race_openf1_mapping",
            _table(
                [
                    "scale",
                    "races",
                    "meetings",
                    "sessions",
                    "generate s",
                    "dbt build s",
                    "models s",
                    "matching model s",
                    "mapping model s",
                    "apply s",
                    "mapped",
                    "consistent",
                ],
                [
                    [
                        f"x{r['scale']}",
                        r["races"],
                        r["meetings"],
                        r["sessions"],
                        r["generate_seconds"],
                        r["dbt_build_seconds"],
                        r["models_seconds"],
                        r.get("matching_model_seconds"),
                        r["mapping_model_seconds"],
                        r["apply_seconds"],
                        r["by_reason"].get("mapped", 0),
                        r["mapped_matches_scale"],
                    ]
                    for r in sc.get("results", [])
                ]
                + [
                    [
                        f"x{r['scale']}",
                        r["races"],
                        r["meetings"],
                        r["sessions"],
                        r["generate_seconds"],
                        f">{r['dbt_build_seconds']}",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "NOT FINISHED",
                    ]
                    for r in sc.get("unfinished", [])
                ],
            ),
            *(f"x{r['scale']}: {r['reason']}" for r in sc.get("unfinished", [])),
        ]
        if sc.get("growth"):
            out += [
                "",
                "GROWTH between scales (time ratio; data grows by the 'data' factor)",
                _table(
                    [
                        "from",
                        "to",
                        "data",
                        "dbt build",
                        "models",
                        "matching model",
                        "mapping model",
                        "apply",
                    ],
                    [
                        [
                            f"x{g['from']}",
                            f"x{g['to']}",
                            f"×{g['data']}",
                            f"×{g['dbt_build_seconds']}",
                            f"×{g['models_seconds']}",
                            f"×{g.get('matching_model_seconds')}",
                            f"×{g['mapping_model_seconds']}",
                            f"×{g['apply_seconds']}",
                        ]
                        for g in sc["growth"]
                    ],
                ),
            ]
        if sc.get("results"):
            slowest = sorted(
                sc["results"][-1].get("node_seconds", {}).items(), key=lambda kv: -kv[1]
            )[:8]
            out += [
                "",
                f"SLOWEST NODES at x{sc['results'][-1]['scale']} (seconds; across scales in "
                "bench.json node_seconds)",
                _table(["node", "seconds"], [list(kv) for kv in slowest]),
            ]
        checks = sc.get("failures")
        if checks is not None:
            out += [
                "",
                "CHECKS — every scale finishes; no node grows faster than "
                f"{sc.get('growth_limit', 'the data')}; no nested loop rescans its inner side",
                *(["all pass"] if not checks else [f"FAILED {line}" for line in checks]),
            ]
        for label, item in sc.get("explain", {}).items():
            out += ["", f"PLAN: {label}"]
            out += ["  " + line for line in item["plan"]]
            out += ["  findings: " + "; ".join(item["findings"])]
    e2e = report.get("end_to_end") or {}
    if "warm" in e2e:
        out += end_to_end_lines(e2e)
    # Parts printed by their own module (``<part>_lines``), imported only when measured.
    for part, finished in (
        ("devices", "devices"),
        ("pages", "median_seconds"),
        ("memory", "results"),
    ):
        measured = report.get(part) or {}
        if finished in measured:
            module = importlib.import_module(f".{part}", __package__)
            out += getattr(module, f"{part}_lines")(measured)
    imp = report.get("imports") or {}
    if imp:
        out += [
            "",
            "IMPORTS (python -X importtime; seconds)",
            f"interpreter start {imp['interpreter_seconds']}, import racemap.cli "
            f"{imp['import_racemap_cli_seconds']}, import racemap.pipeline "
            f"{imp['import_racemap_pipeline_seconds']}; heavy libraries loaded by importing the "
            f"pipeline: {', '.join(imp['heavy_modules_after_importing_pipeline'] or []) or 'none'}",
            _table(
                ["module", "seconds", "largest imports / needed by"],
                [
                    [
                        name,
                        item["seconds"],
                        item.get("needed_by")
                        or ", ".join(f"{k} {v}" for k, v in item["largest"].items()),
                    ]
                    for name, item in imp["importtime"].items()
                ],
            ),
        ]
    return "\n".join(out)


def race_data_lines(rd: dict) -> list[str]:
    if "racemap" not in rd:
        return []
    r, ref = rd["racemap"], rd["reference"]
    label = " (extrapolated)" if ref["extrapolated"] else ""
    return [
        "",
        f"RACE DATA — racemap sync over the {rd['sessions']} race and sprint sessions of "
        f"{rd['season']} ({', '.join(rd['endpoints'])}), rate limit {rd['rate_limit']}",
        _table(
            ["", "sessions", "requests", "seconds"],
            [
                ["racemap sync", rd["sessions"], r["requests"], r["seconds"]],
                [
                    "racemap sync again (settled, empty answers asked once more)",
                    rd["sessions"],
                    r["second_sync_requests"],
                    r["second_sync_seconds"],
                ],
                [
                    "racemap sync a third time (settled)",
                    rd["sessions"],
                    r["third_sync_requests"],
                    r["third_sync_seconds"],
                ],
                [
                    "per-driver reference (measured)",
                    ref["sessions"],
                    ref["requests"],
                    ref["seconds"],
                ],
                [
                    f"per-driver reference, the season{label}",
                    rd["sessions"],
                    ref["full_requests"],
                    ref["full_seconds"],
                ],
            ],
        ),
        f"ratio reference/racemap: requests ×{rd['ratio']['requests']}, "
        f"time ×{rd['ratio']['seconds']}{label}",
    ]


def end_to_end_lines(e2e: dict) -> list[str]:
    """The floor against the warm run: medians, every round, the ratio, the warm run's stages."""
    floor, warm = e2e["floor"], e2e["warm"]

    def rounds(values: list[float]) -> str:
        return ", ".join(f"{v:.2f}" for v in values)

    rows = [
        [f"floor: {step['label']}", step["median_seconds"], rounds(step["seconds"])]
        for step in floor["steps"].values()
    ]
    rows.append(
        ["floor: the three together", floor["median_seconds"], rounds(floor["total_seconds"])]
    )
    rows.append([f"warm: {warm['command']}", warm["median_seconds"], rounds(warm["seconds"])])
    stages = [[name, s] for name, s in warm["median_stage_seconds"].items()]
    stages += [
        ["outside the stages", warm["median_outside_stages_seconds"]],
        ["total (median wall time)", warm["median_seconds"]],
    ]
    first = e2e["first_run"]
    return [
        "",
        f"END TO END — the warm run against the floor of the tools it starts; {e2e['rounds']} "
        f"rounds, {e2e['order']}; {e2e['database']} (seconds)",
        _table(["", "median", "rounds"], rows),
        f"ratio warm / floor: ×{e2e['ratio_warm_to_floor']}",
        f"first run (fills the database, not counted): {first['wall_seconds']} s, "
        f"{first['mapped']} races mapped",
        "",
        "WARM RUN BY STAGE (median seconds, from summary.json stage_seconds)",
        _table(["stage", "seconds"], stages),
    ]
