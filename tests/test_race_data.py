"""The race data marts, their checks, ``racemap sync``'s verdict and the race page, on a real
PostgreSQL: the demo after ``racemap run --offline`` (the session's shared mapped database)
and ``racemap sync --offline`` (the bundled recorded sessions), once for the module; tests
that change data take a copy.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pandas as pd
import pytest
from conftest import AS_OF, database_copy, query

from racemap import cli
from racemap.errors import RacemapError
from racemap.mapping import lookup
from racemap.openf1.sync import SyncRun
from racemap.race_data import RaceDataRun, build_and_check, sync_and_check
from racemap.reporting import race_page
from racemap.settings import validate_vars

SINGAPORE_2024 = "1138"  # session 9606, recorded: 20 cars, 1179 laps
MARTS = (
    "race_laps",
    "race_stints",
    "race_pit_stops",
    "race_positions",
    "race_weather",
    "race_control_messages",
    "race_intervals",
    "race_overtakes",
    "race_classification",
)


# The vars of the tests' runs (no race data model reads as_of): the shared mapped database's
# copies come parsed by dbt with them (conftest._parsed_state), and a build with other vars
# parses the project in full.
PINNED = validate_vars({"as_of": AS_OF})


@pytest.fixture(scope="module")
def synced(mapped_template, tmp_path_factory):
    """A copy of the mapped demo with every bundled session synced, built and checked:
    (db, result, the lines the sync logged)."""
    with database_copy(mapped_template[0]) as db:
        reports = tmp_path_factory.mktemp("race-data-reports")
        lines: list[str] = []
        result = sync_and_check(
            RaceDataRun(
                SyncRun(
                    db, [2023, 2024, 2025], offline=True, run_id="module-sync", log=lines.append
                ),
                reports,
                PINNED,
                pages=False,
            )
        )
        yield db, result, lines


@pytest.fixture(scope="module")
def synced_copy(synced):
    """Copies of the module's synced database for the tests that change it, one at a time,
    all under one name, each with the local state (dbt's target, the GX context) the one
    before it left, the first with the synced database's: dbt's partial parse holds the
    connection's database name, so a copy under a name of its own parsed the project in full
    (as conftest's named copy of the shared mapped database explains). A sync on a copy is
    a user's next one on a database restored with its state."""
    import contextlib
    import shutil

    from conftest import SCRATCH

    from racemap.runtime import state_dir

    db = synced[0]
    name = f"{db.dbname.removeprefix(SCRATCH.prefix + '_')}_again"
    state = []

    @contextlib.contextmanager
    def copy():
        made = SCRATCH.create(name, template=db)
        try:
            if not state:
                state.append(state_dir(made))
                shutil.copytree(state_dir(db), state[0], symlinks=True)
            yield made
        finally:
            SCRATCH.drop(made)

    yield copy
    for path in state:
        shutil.rmtree(path, ignore_errors=True)


def quiet_run(db, reports, run_id: str, variables: dict | None = PINNED) -> RaceDataRun:
    return RaceDataRun(SyncRun(db, run_id=run_id, log=lambda _line: None), reports, variables)


def links(db, race_id: str) -> dict[int, str]:
    """OpenF1 car number -> the application's driver id at the race (race_driver_links)."""
    rows = query(
        db,
        "select driver_number, driver_id from racemap.race_driver_links"
        " where race_id = %s and is_linked",
        (race_id,),
    )
    return dict(rows)


def sync_args(db, reports, *extra) -> list[str]:
    return [
        "sync",
        "--database-url",
        db.url,
        "--offline",
        "--reports-dir",
        str(reports),
        *extra,
    ]


def test_before_any_sync_the_marts_build_empty_and_the_checks_pass(mapped_template, tmp_path):
    with database_copy(mapped_template[0]) as db:
        assert query(db, "select to_regclass('racemap.race_laps')") == [(None,)]  # not a run's
        failures, attention = build_and_check(quiet_run(db, tmp_path, "empty"), tmp_path)
        assert failures == [] and attention == []
        for mart in (*MARTS, "race_data_checks"):
            assert query(db, f"select count(*) from racemap.{mart}") == [(0,)], mart
        with db.transaction() as conn:
            assert lookup.race_laps(conn, SINGAPORE_2024) == []


# The run on a copy of the shared mapped database comes before the first test on the module's
# synced database: while that copy is open, the run's copy would be a second one, whose dbt
# parse is full (conftest.database_copy).
def test_racemap_run_race_data_syncs_the_runs_seasons(
    mapped_template, tmp_path, capsys, monkeypatch
):
    """``racemap run --race-data`` syncs the run's seasons after the run, its race pages beside
    the run's reports. A later run publishes a new report set with the race pages carried over
    into it; that run, with --race-data too, is stopped by a Ctrl-C during its sync (raised
    where the sync's build runs): the line names the sync's stage, not the run's, which
    finished and is recorded with its verdict."""
    import signal

    from racemap import race_data
    from racemap.errors import Interrupted

    with database_copy(mapped_template[0]) as db:
        reports = tmp_path / "reports"
        args = ["run", "--database-url", db.url, "--offline", "--seasons", "2023"]
        args += ["--var", f"as_of={AS_OF}", "--reports-dir", str(reports), "--race-data"]
        code = cli.main(args)
        out = capsys.readouterr().out
        assert "race data verdict: ok" in out
        assert code in (0, 3)  # the run's own verdict on 2023; the race data adds nothing
        assert query(db, "select count(*) from racemap.race_laps where race_id = '1098'") == [
            (1058,)
        ]
        assert (reports / "races" / "1098.html").exists()
        assert (reports / "summary.json").exists()  # the run's reports stay beside the pages
        first = json.loads((reports / "summary.json").read_text())["run_id"]

        def interrupted_in_the_build(run):
            raise Interrupted("interrupted during dbt_build", signal.SIGINT)

        monkeypatch.setattr(race_data, "sync_and_check", interrupted_in_the_build)
        assert cli.main(args) == 130
        assert capsys.readouterr().err.splitlines() == [
            "racemap: interrupted during dbt_build of the race data sync (the run itself finished)"
        ]
        summary = json.loads((reports / "summary.json").read_text())
        assert summary["verdict"] == "ok" and summary["run_id"] != first  # the later run's
        # The later run's report set: the race pages are carried over into it.
        assert (reports / "races" / "1098.html").exists()
        assert "races/1098.html" in (reports / "race_pages.html").read_text(encoding="utf-8")
        # Its mapping report counts the pages it kept and links their index.
        report = (reports / "mapping_report.html").read_text(encoding="utf-8")
        assert "1 race page of 1 race, from <code>racemap sync</code>" in report  # 1098's
        assert '<a href="race_pages.html">race_pages.html</a>' in report


def test_singapore_laps_are_under_the_applications_driver_ids(synced):
    db, result, _lines = synced
    assert result.verdict == "ok" and result.failures == [] and result.attention == []
    with db.transaction() as conn:
        laps = lookup.race_laps(conn, SINGAPORE_2024)
    assert len(laps) == 1179
    assert {row["session_key"] for row in laps} == {9606}
    by_number = links(db, SINGAPORE_2024)
    assert len(by_number) == 20
    assert {row["driver_number"] for row in laps} == set(by_number)
    for row in laps:
        assert row["driver_id"] == by_number[row["driver_number"]]
    winner = [r for r in laps if r["driver_number"] == 4]
    assert [r["lap_number"] for r in winner] == list(range(1, 63))
    assert all(isinstance(r["lap_duration"], float) for r in winner[1:])
    # the SQL function is what the Python call reads
    assert query(db, "select count(*) from racemap.race_laps('1138', 'race')") == [(1179,)]


def test_race_laps_of_a_race_without_the_session_is_not_mapped(synced):
    db, _result, _lines = synced
    with db.transaction() as conn:
        with pytest.raises(lookup.NotMapped, match="no sprint session"):
            lookup.race_laps(conn, SINGAPORE_2024, "sprint")
        with pytest.raises(RacemapError, match="unknown session kind"):
            lookup.race_laps(conn, SINGAPORE_2024, "warmup")
        assert lookup.race_laps(conn, "1125", "sprint") == []  # a sprint with no laps recorded


def current_rows(db, endpoint: str, session_key: int) -> int:
    """The rows of ``endpoint``'s raw table for the session that OpenF1 still lists."""
    from psycopg2 import sql

    from racemap.openf1 import endpoints

    statement = sql.SQL("select count(*) from {} where session_key = %s and removed_at is null")
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(statement.format(endpoints.get(endpoint).relation), (session_key,))
        return cur.fetchone()[0]


def test_after_an_offline_run_the_demo_races_sync_offline(synced):
    """The demo: ``racemap run --offline`` maps the races, ``racemap sync --offline`` loads the
    recorded race data of their race and sprint sessions (the module's sync, whose load logs
    the lines before its build's)."""
    db, result, lines = synced
    lines = lines[: lines.index("-> dbt build --select tag:race_data")]  # the load's
    synced_sessions = {s.session_key: s for s in result.sync.sessions}
    # The sessions the snapshot has no recording of: counted in one line, not one each.
    loaded = {x.session_key for x in result.sync.loads if x.status == "ok"}
    unrecorded = set(synced_sessions) - loaded
    assert len(unrecorded) > 40
    assert (
        f"the bundled snapshot records no race data of {len(unrecorded)} sessions: racemap"
        " sync without --offline fetches them from OpenF1"
    ) in lines
    assert len(lines) < len(synced_sessions) - len(unrecorded) + 3
    # the recorded sessions (data/README.md, race data): the races and the 2024 Chinese sprint
    assert {7953, 9673, 9672, 9606, 9636, 9693} <= set(synced_sessions)
    assert synced_sessions[9672].session_kind == "sprint"
    assert synced_sessions[9606].session_kind == "race"
    assert result.sync.rows_rejected == 0
    assert current_rows(db, "laps", 9606) == 1179 and current_rows(db, "position", 9672) == 209
    assert current_rows(db, "stints", 10033) > 0


def _cells(notebook) -> list[tuple]:
    """What a reader sees of an executed notebook: each cell's kind, prompt number and outputs
    (not the timings papermill and nbclient record)."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    return [(c.cell_type, c.get("execution_count"), c.get("outputs")) for c in nb.cells]


def _kernels() -> list[int]:
    """This process's kernels still running (an ipykernel child)."""
    import psutil

    return [
        child.pid
        for child in psutil.Process().children(recursive=True)
        if "ipykernel_launcher" in " ".join(child.cmdline())
    ]


def test_race_pages_in_one_kernel_are_the_pages_each_kernel_of_its_own_renders(synced, tmp_path):
    """A sync's pages share a kernel: each page as it is alone (a new session: no variable,
    figure or prompt number of the page before), a failing page leaves the next one its kernel,
    and no kernel outlives the pages."""
    from racemap import runtime
    from racemap.race_data import Page, render_pages
    from racemap.settings import load_environment

    db, _result, _lines = synced
    unmapped = "833"  # British GP 1950: before OpenF1, no keys, so its page stops in a cell
    races = [SINGAPORE_2024, unmapped, "1121", "1125", "1148"]
    with runtime.database_state(db, load_environment().racemap_state_dir):
        shared, shared_failures = render_pages(
            [Page(r) for r in races], tmp_path / "shared", lambda _: None
        )
        assert _kernels() == []
        alone, alone_failures = render_pages(
            [Page(r) for r in races if r != unmapped],
            tmp_path / "alone",
            lambda _: None,
            shared_kernel=False,
        )
    assert (
        [p.name for p in shared]
        == [p.name for p in alone]
        == [
            "1138.html",
            "1121.html",
            "1125.html",
            "1148.html",
        ]
    )
    assert alone_failures == [] and len(shared_failures) == 1
    assert shared_failures[0].startswith(f"race page of race {unmapped}: race page failed")
    assert "not mapped" in shared_failures[0]
    for race_id in (SINGAPORE_2024, "1121", "1125", "1148"):
        page = f"races/{race_id}.ipynb"
        assert _cells(tmp_path / "shared" / page) == _cells(tmp_path / "alone" / page), race_id
        assert _cells(tmp_path / "shared" / page)[1][1] == 1  # the first code cell is In [1]
    # Bahrain 2025 (session 10014): no laps recorded, the drivers counted from the other data.
    printed = [
        output.get("text", "")
        for _kind, _n, outputs in _cells(tmp_path / "shared" / "races/1148.ipynb")
        for output in outputs or []
    ]
    summary = "race: 20 drivers, 0 laps, 62 stints, 42 pit stops, 1179 position changes"
    assert summary in "".join(printed)
    # Singapore 2024: the result first, Norris's winning time on its first row.
    singapore = json.dumps(_cells(tmp_path / "shared" / "races/1138.ipynb"))
    assert re.search(r"1 +NOR +4 +846 +62 +1:40:52.571 +25 +finished", singapore)
    # Bahrain 2024 (session 9472): no positions, no pit stops: a line says so under each heading.
    bahrain = json.dumps(_cells(tmp_path / "shared" / "races/1121.ipynb"))
    assert "No positions recorded for this session." in bahrain
    assert "No pit stops recorded for this session." in bahrain


def test_a_shared_kernel_that_died_between_pages_is_replaced(synced, tmp_path):
    """The kernel killed after the first page (out of memory, say): the next page starts a new
    kernel instead of failing on the dead one."""
    import os
    import signal
    import time

    import psutil

    from racemap import runtime
    from racemap.race_data import Page, render_pages
    from racemap.settings import load_environment

    killed = []

    def kill_before_the_second_page(line: str) -> None:
        if line == "-> race page of race 1121":
            (pid,) = _kernels()  # the first page's kernel, still running
            os.kill(pid, signal.SIGKILL)
            # Dead, every thread of it, and not yet reaped (the kernel's manager reaps it).
            process = psutil.Process(pid)
            while (
                process.status() != psutil.STATUS_ZOMBIE or len(os.listdir(f"/proc/{pid}/task")) > 1
            ):
                time.sleep(0.05)
            killed.append(pid)

    db, _result, _lines = synced
    with runtime.database_state(db, load_environment().racemap_state_dir):
        pages, failures = render_pages(
            [Page(SINGAPORE_2024), Page("1121")], tmp_path, kill_before_the_second_page
        )
    assert killed and failures == []
    assert [p.name for p in pages] == ["1138.html", "1121.html"]
    assert _kernels() == []


def test_the_bench_measures_the_pages_in_one_kernel_against_a_kernel_each(synced):
    """``racemap bench --parts pages`` on the module's synced database, one round: the structure
    and the facts, never the timings."""
    import benchmarks
    from benchmarks.pages import PLAIN, SHARED, measure_pages

    db, _result, _lines = synced
    pages = measure_pages(db, [SINGAPORE_2024, "1121"], rounds=1, log=lambda _line: None)
    assert pages["races"] == [SINGAPORE_2024, "1121"] and pages["rounds"] == 1
    for name in (SHARED, PLAIN):
        (seconds,) = pages["seconds"][name]
        assert pages["median_seconds"][name] == seconds > 0
    assert pages["saving_by_round"] == [
        pytest.approx(pages["median_seconds"][PLAIN] - pages["median_seconds"][SHARED], abs=0.002)
    ]
    assert pages["saving_seconds"] == pages["saving_by_round"][0]
    assert pages["saving_per_page_after_the_first"] == pytest.approx(pages["saving_seconds"])
    assert pages["keep"] == (pages["saving_seconds"] >= pages["keep_when_saving_at_least_seconds"])
    text = benchmarks.format_report({"machine": {"cpus": 2}, "date": "today", "pages": pages})
    assert "PAGES — 2 race pages of a sync (1138, 1121)" in text and "one kernel saves" in text


def test_every_mart_carries_the_keys_and_the_quirks_survive(synced):
    db, _result, _lines = synced
    for mart in MARTS:
        nulls = query(
            db,
            f"select count(*) from racemap.{mart}"
            " where race_id is null or session_kind is null or meeting_key is null"
            " or session_key is null",
        )
        assert nulls == [(0,)], mart
    assert query(db, "select count(*) from racemap.race_weather") != [(0,)]
    # null lap_start/lap_end kept (a car that never completed a lap: Stroll, São Paulo 2024)
    assert query(
        db,
        "select driver_number from racemap.race_stints"
        " where race_id = '1141' and lap_start is null",
    ) == [(18,)]


def test_the_result_of_a_synced_session_is_openf1s_under_the_applications_ids(synced):
    db, _result, _lines = synced
    rows = query(
        db,
        "select name_acronym, driver_id, position, number_of_laps, duration_seconds,"
        " gap_to_leader_seconds, gap_to_leader_laps, result_status"
        " from racemap.race_classification where race_id = '1138' and session_kind = 'race'"
        " order by position nulls last",
    )
    assert len(rows) == 20 and [r[0] for r in rows[:3]] == ["NOR", "VER", "PIA"]
    linked = links(db, SINGAPORE_2024)
    assert rows[0][1] == linked[4] and rows[1][1] == linked[1]  # the application's drivers
    winner, second, eighth = rows[0], rows[1], rows[7]
    assert (float(winner[4]), float(winner[5]), winner[7]) == (6052.571, 0.0, "finished")
    assert float(second[5]) == 20.945 and second[4] is not None
    assert (eighth[0], eighth[4], eighth[5], eighth[6]) == ("ALO", None, None, 1)  # "+1 LAP"
    # Magnussen retired on lap 57 and is classified 19th; Albon retired on lap 15, unclassified.
    assert rows[18][:4] == ("MAG", linked[20], 19, 57) and rows[18][7] == "retired"
    assert rows[19][:4] == ("ALB", linked[23], None, 15) and rows[19][7] == "retired"
    # Only the synced sessions: the bundled snapshot has the results of 70 races.
    synced_sessions = query(
        db,
        "select count(distinct session_key) from racemap.race_classification"
        " union all select count(distinct session_key) from racemap.race_positions"
        " where session_key not in (select session_key from racemap.race_classification)",
    )
    assert synced_sessions == [(25,), (0,)]


def _words(table) -> list[list[str]]:
    """A report table's plain text, as a reader of the notebook's text sees it: words by line."""
    return [line.split() for line in repr(table).splitlines()]


def test_the_result_table_shows_times_gaps_and_what_became_of_each_car():
    from racemap.reporting.race_page import classification_table

    frame = pd.DataFrame(
        {
            "driver_id": ["846", "830", "4", "825", None],
            "driver_number": [4, 1, 14, 20, 23],
            "name_acronym": ["NOR", "VER", "ALO", "MAG", None],
            "position": [1, 2, 8, 19, None],
            "number_of_laps": [62, 62, 61, 57, 15],
            "points": [25.0, 18.0, 4.0, 0.0, 0.5],
            "duration_seconds": [6052.571, 6073.516, None, None, None],
            "gap_to_leader_seconds": [0, 20.945, None, None, None],
            "gap_to_leader_laps": [None, None, 1, None, None],
            "result_status": ["finished", "finished", "finished", "retired", "not_classified"],
            "q1_seconds": [None] * 5,
            "q2_seconds": [None] * 5,
            "q3_seconds": [None] * 5,
        },
        index=[3, 5, 7, 9, 11],  # as the rows of chosen drivers have it
    )
    lines = _words(classification_table(frame))
    assert lines[0] == ["position", "driver", "car", "driver_id", "laps", "time", "or", "gap"] + [
        "points",
        "status",
    ]
    assert lines[1] == ["1", "NOR", "4", "846", "62", "1:40:52.571", "25", "finished"]
    assert lines[2] == ["2", "VER", "1", "830", "62", "+20.945", "18", "finished"]
    assert lines[3] == ["8", "ALO", "14", "4", "61", "+1", "lap", "4", "finished"]
    assert lines[5] == ["-", "23", "23", "-", "15", "0.5", "not", "classified"]
    assert "1.000000" not in classification_table(frame)._repr_html_()
    # A qualifying: each part's best lap, no race time (Leclerc crashed in Q3, Singapore 2024).
    qualifying = frame.iloc[:2].assign(
        duration_seconds=None,
        gap_to_leader_seconds=None,
        q1_seconds=[90.002, 90.786],
        q2_seconds=[90.007, 89.747],
        q3_seconds=[89.525, None],
        points=None,
    )
    lines = _words(classification_table(qualifying))
    assert lines[0][5:] == ["Q1", "Q2", "Q3", "points", "status"]
    assert lines[1][5:] == ["1:30.002", "1:30.007", "1:29.525", "-", "-"]
    assert lines[2][5:9] == ["1:30.786", "1:29.747", "-", "-"]
    crashed = qualifying.assign(result_status=["finished", "retired"])
    lines = _words(classification_table(crashed))
    assert lines[1][-1] == "-" and lines[2][-1] == "retired"
    assert "No result recorded" in classification_table(frame.iloc[0:0]).data


def test_the_pit_stop_table_reads_as_a_list_of_stops():
    from racemap.reporting.race_page import pit_stop_table

    stops = pd.DataFrame(
        {
            "driver_id": ["817", None],
            "driver_number": [3, 99],
            "name_acronym": ["RIC", None],
            "lap_number": [10, 11],
            "pit_duration": [Decimal("30.312"), Decimal("29.06")],
            "stop_duration": [None, None],  # OpenF1 sends it from 2025 only
        }
    )
    lines = _words(pit_stop_table(stops))
    assert lines == [
        ["lap", "driver", "car", "driver_id", "in", "the", "pit", "lane", "(s)"],
        ["10", "RIC", "3", "817", "30.3"],
        ["11", "99", "99", "-", "29.1"],
    ]
    html = pit_stop_table(stops.assign(stop_duration=[2.44, None]))._repr_html_()
    assert ">30.3<" in html and ">2.4<" in html and "stationary (s)" in html
    assert "No pit stops recorded" in pit_stop_table(stops.iloc[0:0]).data


def test_final_positions_and_lap_counts_agree_with_the_results(synced):
    db, _result, _lines = synced
    assert query(db, "select count(*) from racemap.race_data_checks") == [(0,)]
    # Singapore directly: each car's last position is its classified position in the results.
    rows = query(
        db,
        "with last as (select distinct on (driver_number) driver_number, driver_id, position"
        " from racemap.race_positions where race_id = '1138' and session_kind = 'race'"
        " order by driver_number, recorded_at desc)"
        " select last.driver_id, last.position, l.app_position from last"
        " join racemap.race_driver_links l on l.race_id = '1138'"
        " and l.driver_number = last.driver_number where l.app_position is not null",
    )
    assert len(rows) == 18  # Norris has no position row in the recording, Albon is unclassified
    assert all(position == app for _driver, position, app in rows)


def test_overlapping_stints_and_a_moved_position_are_attention_naming_race_and_driver(
    synced, synced_copy, tmp_path
):
    db, _result, _lines = synced
    numbers = links(db, SINGAPORE_2024)
    with synced_copy() as copy:
        with copy.transaction() as conn, conn.cursor() as cur:
            # Hamilton's (44) second stint starts ten laps before his first ended.
            cur.execute(
                "update raw.openf1_stints set lap_start = lap_start - 10"
                " where session_key = 9606 and driver_number = 44 and stint_number = 2"
            )
            # Piastri (81) finished third; his last position row says eighth.
            cur.execute(
                "update raw.openf1_position set position = 8 where session_key = 9606"
                " and driver_number = 81 and date = (select max(date) from raw.openf1_position"
                " where session_key = 9606 and driver_number = 81)"
            )
        # No vars, as the syncs on the later copies (a copy's parse is partial with the same).
        moved = quiet_run(copy, tmp_path, "moved", variables=None)
        failures, attention = build_and_check(moved, tmp_path)
    assert failures == []
    text = "\n".join(attention)
    assert f"race 1138 (race): driver {numbers[44]} (car 44 HAM): stints_overlap: stint 2" in text
    assert f"race 1138 (race): driver {numbers[81]} (car 81 PIA): final_position" in text
    assert all(line.startswith("race 1138 (race): driver ") for line in attention)


def test_racemap_sync_exits_3_when_a_result_disagrees_and_renders_the_race_page(
    synced, synced_copy, tmp_path, capsys
):
    db, _result, _lines = synced
    numbers = links(db, SINGAPORE_2024)
    with synced_copy() as copy:
        with copy.transaction() as conn, conn.cursor() as cur:
            # The application swaps Russell (4th) and Piastri (3rd); an acronym with markup.
            cur.execute(
                "update public.results set position = case number when 81 then 4 else 3 end"
                " where race_id = '1138' and number in (63, 81)"
            )
            cur.execute(
                "update raw.openf1_drivers set name_acronym = '<b>PIA'"
                " where session_key = 9606 and driver_number = 81"
            )
        reports = tmp_path / "reports"
        code = cli.main(sync_args(copy, reports, "--race-id", "1138", "--endpoints", "laps"))
        captured = capsys.readouterr()
        # racemap status says the same from the database alone, until a sync agrees again.
        assert cli.main(["status", "--database-url", copy.url]) == 3
        status_err = capsys.readouterr().err
        assert f"attention: race data: race 1138 (race): driver {numbers[81]} (car 81" in status_err
    assert code == 3, captured.err
    assert f"attention: race 1138 (race): driver {numbers[63]} (car 63 " in captured.err
    assert f"driver {numbers[81]} (car 81 <b>PIA): final_position" in captured.err
    assert "race data verdict: attention" in captured.out
    page = (reports / "races" / "1138.html").read_text(encoding="utf-8")
    charts = re.findall(
        r'<img alt="([^"]*)" src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}', page
    )
    assert charts == ["lap times by driver", "tyre stints", "positions over the session", "weather"]
    assert "&lt;b&gt;PIA" in page and "<b>PIA" not in page  # the pit stops table, escaped
    assert "Singapore" in page


@pytest.fixture(scope="module")
def sync_of_what_racemap_did_not_build(synced, tmp_path_factory):
    """One ``racemap sync`` of race 1138's laps, before any run of this release, on a copy of
    the synced demo with two things this release's runs did not leave: the session results'
    view as an earlier release left it (no q1_seconds), and the races table moved to
    app.grand_prix (the vars name it). The two tests after it read one each (neither changes
    the copy): (copy, exit code, standard output, standard error, reports folder)."""
    import contextlib
    import io

    db, _result, _lines = synced
    with database_copy(db) as copy:
        query(
            copy,
            "alter view racemap_staging.stg_openf1__session_results"
            " rename column q1_seconds to earlier_column",
        )
        query(
            copy,
            "create schema app; alter table public.races set schema app;"
            " alter table app.races rename to grand_prix",
        )
        reports = tmp_path_factory.mktemp("not-built") / "reports"
        named = ["--var", "races_schema=app", "--var", "races_table=grand_prix"]
        args = sync_args(copy, reports, "--race-id", "1138", "--endpoints", "laps", *named)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(args)
        yield copy, code, out.getvalue(), err.getvalue(), reports


def test_a_sync_of_a_races_table_the_vars_name_renders_its_page(sync_of_what_racemap_did_not_build):
    """The races table moved to app.grand_prix: the sync, given the vars that name it, renders
    the race's page (the page looks the race's keys up in that table, not in public.races)."""
    _copy, code, out, err, reports = sync_of_what_racemap_did_not_build
    assert code == 0, err
    assert "race page: " in out and "race data verdict: ok" in out
    page = (reports / "races" / "1138.html").read_text(encoding="utf-8")
    assert "race 1138: meeting_key 1246, session_key 9606" in page


def test_a_sync_before_any_run_of_a_new_release_types_the_results_as_it_does(
    sync_of_what_racemap_did_not_build,
):
    """The session results' view as an earlier release left it (no q1_seconds): a sync, before
    any run, builds it again with the race data, so the result it shows is this release's."""
    copy, code, _out, err, _reports = sync_of_what_racemap_did_not_build
    assert code == 0, err
    assert query(
        copy,
        "select q1_seconds, q3_seconds from racemap_staging.stg_openf1__session_results"
        " where session_key = 9602 and driver_number = 4",  # Singapore 2024: Norris's pole
    ) == [(Decimal("90.002"), Decimal("89.525"))]


def test_a_page_that_fails_is_a_failed_sync_stopped_at_pages(synced, synced_copy, tmp_path, capsys):
    """The races table lost race 1138's keys after the run: the sync (which follows the
    mapping) loads and builds, then the page cannot look the race up. The sync is failed at
    the pages, and racemap status says so."""
    db, _result, _lines = synced
    with synced_copy() as copy:
        query(
            copy,
            "update public.races set openf1_meeting_key = null, openf1_session_key = null"
            " where id = '1138'",
        )
        args = sync_args(copy, tmp_path / "reports", "--race-id", "1138", "--endpoints", "laps")
        code = cli.main(args)
        captured = capsys.readouterr()
        recorded = query(
            copy,
            "select verdict, stopped_at from racemap.sync_runs order by started_at desc limit 1",
        )
        assert cli.main(["status", "--database-url", copy.url]) == 1
        status_err = capsys.readouterr().err
    assert code == 1, captured.err
    assert "race pages failed: race page of race 1138: " in captured.err
    assert "race data verdict: failed" in captured.out
    assert recorded == [("failed", "pages")]
    assert "last sync failed at pages: race page of race 1138: " in status_err


def test_a_page_is_rendered_again_when_the_applications_driver_ids_change(
    synced, synced_copy, tmp_path, capsys
):
    """No OpenF1 row is new, but the application re-keys Piastri (car 81): the marts carry the
    new driver id, so the next sync renders race 1138's page again, showing it; a sync after
    that keeps the page; a result corrected afterwards renders it again."""
    db, _result, _lines = synced
    with synced_copy() as copy:
        reports = tmp_path / "reports"
        args = sync_args(copy, reports, "--race-id", "1138", "--endpoints", "laps")
        assert cli.main(args) == 0
        assert "-> race page of race 1138" in capsys.readouterr().out
        old_id = links(copy, SINGAPORE_2024)[81]
        query(
            copy,
            "insert into public.drivers (id, driver_ref, number, code, forename, surname)"
            " select 'rekeyed-81', 'rekeyed_piastri', number, code, forename, surname"
            " from public.drivers where id = %s",
            (old_id,),
        )
        query(
            copy,
            "update public.results set driver_id = 'rekeyed-81'"
            " where race_id = '1138' and driver_id = %s",
            (old_id,),
        )
        assert cli.main(args) == 0
        out = capsys.readouterr().out
        assert "-> race page of race 1138" in out and "kept" not in out
        page = (reports / "races" / "1138.html").read_text(encoding="utf-8")
        assert "rekeyed-81" in page
        assert cli.main(args) == 0
        out = capsys.readouterr().out
        assert "-> race page" not in out and "pages of 1 session kept" in out
        # OpenF1 corrects the result after the race (Magnussen disqualified), and a run loads
        # it: the next sync shows the corrected result.
        query(
            copy,
            "update raw.openf1_session_results set dsq = true, position = null"
            " where session_key = 9606 and driver_number = 20",
        )
        assert cli.main(args) == 0
        assert "-> race page of race 1138" in capsys.readouterr().out
        page = (reports / "races" / "1138.html").read_text(encoding="utf-8")
        assert "disqualified" in page


def test_a_sprint_synced_gets_its_own_page_rendered_when_its_own_data_changes(
    synced, synced_copy, tmp_path, capsys
):
    """The 2024 Chinese GP (race 1125) had a sprint (session 9672, positions recorded): the
    sync renders its page into races/sprint/1125.html beside the race's races/1125.html. Each
    page has its own version: a sprint row that changes renders the sprint's page alone."""
    db, _result, _lines = synced
    with synced_copy() as copy:
        reports = tmp_path / "reports"
        args = sync_args(copy, reports, "--race-id", "1125", "--endpoints", "position,laps")
        assert cli.main(args) == 0
        out = capsys.readouterr().out
        assert "-> race page of race 1125" in out and "-> sprint page of race 1125" in out
        assert f"race page: {reports / 'races' / 'sprint' / '1125.html'}" in out
        assert sorted(p.name for p in (reports / "races").glob("*.html")) == ["1125.html"]
        sprint = (reports / "races" / "sprint" / "1125.html").read_text(encoding="utf-8")
        race = (reports / "races" / "1125.html").read_text(encoding="utf-8")
        assert "; sprint: 9672" in sprint and "; sprint: 9672" not in race
        assert "Positions over the session" in sprint
        # race_pages.html lists both, the race's first, each link to its page.
        index = (reports / "race_pages.html").read_text(encoding="utf-8")
        row = r"<tr><td>(.*?)</td>.*?<td>(\w+)</td><td>(\d+)</td>\s*<td><a href=\"(.*?)\""
        rows = re.findall(row, index, re.S)
        assert rows == [
            ("1125", "race", "9673", "races/1125.html"),
            ("1125", "sprint", "9672", "races/sprint/1125.html"),
        ]
        assert "<td>2024</td><td>Chinese Grand Prix</td><td>2024-04-21</td>" in index
        assert all((reports / href).is_file() for *_cells, href in rows)
        assert cli.main(args) == 0
        assert "pages of 2 sessions kept" in capsys.readouterr().out
        # A sprint row that differs from the recording is loaded again: a newer version of the
        # sprint's data only.
        query(
            copy,
            "update raw.openf1_position set record = record || '{\"edited\": true}'"
            " where session_key = 9672 and driver_number = 1",
        )
        assert cli.main(args) == 0
        out = capsys.readouterr().out
        rendered = [line for line in out.splitlines() if line.startswith("-> ")]
        assert "-> sprint page of race 1125" in rendered
        assert "-> race page of race 1125" not in rendered and "pages of 1 session kept" in out


def stand_in_pages(reports, pages) -> None:
    """A file where racemap sync would write the page of each (race_id, session_kind)."""
    for race_id, kind in pages:
        path = race_page.page_path(reports, race_id, kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("a page")


def test_the_index_of_the_race_pages_escapes_the_applications_race_names(synced, tmp_path):
    """race_pages.html shows the application's race names (user input) as text, never markup,
    and a page whose race is no longer mapped with dashes."""
    db, _result, _lines = synced
    stand_in_pages(tmp_path, [("1138", "race"), ("1125", "sprint"), ("gone & back", "race")])
    with database_copy(db) as copy:
        query(
            copy,
            "update racemap.race_openf1_mapping set race_name = '<script>alert(1)</script> GP'"
            " where race_id = '1138'",
        )
        with copy.transaction() as conn:
            index = race_page.write_index(conn, tmp_path).read_text(encoding="utf-8")
    assert "<script>" not in index and "&lt;script&gt;alert(1)&lt;/script&gt; GP" in index
    assert "3 pages of 3 races" in index
    # The file is races/gone%20%26%20back.html: its link quotes the % signs again.
    assert '<a href="races/gone%2520%2526%2520back.html">races/gone%20%26%20back.html</a>' in index
    assert "<tr><td>gone &amp; back</td><td>-</td><td>-</td><td>-</td><td>race</td>" in index


def test_the_index_of_the_race_pages_dates_each_race_in_utc(synced, tmp_path):
    """The index's date is the race's UTC date whatever the database's TimeZone: at +14:00 the
    2024 Singapore GP (race 1138, 12:00 UTC on 22 September) was dated the 23rd."""
    db, _result, _lines = synced
    stand_in_pages(tmp_path, [("1138", "race")])
    with db.transaction() as conn:
        with conn.cursor() as cur:
            cur.execute("set local timezone = 'Pacific/Kiritimati'")
        index = race_page.write_index(conn, tmp_path).read_text(encoding="utf-8")
    assert "<td>2024-09-22</td>" in index and "2024-09-23" not in index


def test_the_page_draws_its_times_in_utc_whatever_the_database_timezone(synced):
    """The charts' axes say UTC: in America/Los_Angeles the positions and weather of the 2024
    Singapore GP (race 1138) came in at -07:00 and were drawn at 05:00, not 12:00."""
    import matplotlib

    matplotlib.use("Agg")
    db, _result, _lines = synced
    with db.transaction() as conn:
        with conn.cursor() as cur:
            cur.execute("set local timezone = 'America/Los_Angeles'")
        positions = race_page.read(conn, "positions", "1138")
        weather = race_page.read(conn, "weather", "1138")
    for frame in (positions, weather):
        assert str(frame["recorded_at"].dt.tz) == "UTC"
    assert positions["recorded_at"].iloc[0].isoformat() == "2024-09-22T12:04:06.628000+00:00"
    fig = race_page.weather_chart(weather)
    fig.canvas.draw()
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels[0] == "22 11:00" and labels[-1] == "22 13:30", labels  # 11:07 to 13:47 UTC


def test_a_race_id_is_one_file_name_in_the_races_folder(tmp_path):
    """The application's race ids are user input: a page's path stays in the races folder
    whatever the id holds, and the index reads the id back from it."""
    race_ids = ("../../escaped", "a/b", "1138", "50% off", "..")
    folders = {"race": tmp_path / "races", "sprint": tmp_path / "races" / "sprint"}
    pages = [(race_id, kind) for race_id in race_ids for kind in folders]
    for race_id, kind in pages:
        path = race_page.page_path(tmp_path, race_id, kind)
        assert path.resolve().parent == folders[kind].resolve(), (race_id, kind)
    stand_in_pages(tmp_path, pages)
    assert sorted(race_page.published_pages(tmp_path)) == sorted(pages)
    assert race_page.page_path(tmp_path, "1138").name == "1138.html"


def test_a_long_race_id_is_a_file_name_the_file_system_takes(tmp_path):
    """An id whose percent-encoded form would pass 255 bytes keeps its start and ends with a
    digest of the whole id: two long ids alike at the start get two pages; the index reads
    each id from the page's notebook."""
    import json

    race_ids = ("Ü" * 60, "a" * 300, "a" * 299 + "b", "%" * 100)
    for race_id in race_ids:
        for suffix in (".html", ".ipynb"):
            path = race_page.page_path(tmp_path, race_id, "sprint", suffix)
            assert len(path.name.encode()) <= 255 and path.parent == tmp_path / "races" / "sprint"
            path.parent.mkdir(parents=True, exist_ok=True)
            parameters = {"race_id": race_id, "session_kind": "sprint"}
            path.write_text(json.dumps({"metadata": {"papermill": {"parameters": parameters}}}))
    assert len({race_page.page_path(tmp_path, r) for r in race_ids}) == len(race_ids)
    assert sorted(race_page.published_pages(tmp_path)) == sorted((r, "sprint") for r in race_ids)


def test_the_mapping_report_line_on_the_race_pages(tmp_path):
    from racemap.reporting.report_data import race_pages_line

    assert race_pages_line(tmp_path).startswith("_No race pages yet: `racemap sync` renders")
    stand_in_pages(tmp_path, [("1125", "race"), ("1125", "sprint")])
    (tmp_path / race_page.INDEX).write_text("the index")
    assert race_pages_line(tmp_path) == (
        "2 race pages of 1 race, from `racemap sync`: [race_pages.html](race_pages.html)"
    )


def test_chart_legends_list_acronyms_then_car_numbers_in_order():
    from racemap.reporting.race_page import _by_driver

    frame = pd.DataFrame(
        {
            "driver_number": [10, 2, 18, 1, 44, 2],
            "name_acronym": [None, None, None, "VER", "HAM", None],
            "lap_number": [1, 1, 1, 1, 1, 2],
        }
    )
    assert [(label, len(rows)) for label, rows in _by_driver(frame)] == [
        ("HAM", 1),
        ("VER", 1),
        ("2", 2),
        ("10", 1),
        ("18", 1),
    ]


def test_twenty_cars_get_twenty_colours():
    from racemap.reporting.race_page import lap_time_chart

    laps = pd.DataFrame(
        {
            "driver_number": [n for n in range(1, 21) for _ in range(3)],
            "name_acronym": [None] * 60,
            "lap_number": [1, 2, 3] * 20,
            "lap_duration": [90.0 + n / 10 for n in range(60)],
            "is_pit_out_lap": [False] * 60,
        }
    )
    lines = lap_time_chart(laps).axes[0].get_lines()
    assert len(lines) == 20 and len({line.get_color() for line in lines}) == 20


def _stints(rows):
    return pd.DataFrame(
        rows, columns=["driver_number", "name_acronym", "compound", "lap_start", "lap_end"]
    )


def test_tyre_stints_run_in_the_order_at_the_end_and_name_their_compounds():
    from racemap.reporting.race_page import stint_chart

    stints = _stints(
        [
            (1, "VER", "MEDIUM", 1, 20),
            (1, "VER", "HARD", 21, 50),
            (4, "NOR", "SOFT", 1, 50),
            (81, None, None, 1, 12),  # no compound sent: grey, and the legend says so
        ]
    )
    positions = pd.DataFrame(
        {
            "driver_number": [1, 4, 81, 1, 4, 81, 4],
            "recorded_at": pd.to_datetime(
                ["2024-09-22T12:00"] * 3 + ["2024-09-22T13:00"] * 2 + ["2024-09-22T13:01"] * 2
            ),
            "position": [2, 1, 3, 1, 2, 2, 3],  # VER takes the lead, then car 81 passes NOR
        }
    )
    ax = stint_chart(stints, positions).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["VER", "81", "NOR"]
    assert ax.get_ylabel() == "order at the end of the session"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "soft",
        "medium",
        "hard",
        "other or not known",
    ]
    # A car the positions do not place (a recording that starts after the start): the order
    # at the end is not known, the chart takes the legends' order.
    ax = stint_chart(stints, positions[positions["driver_number"] != 4]).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["NOR", "VER", "81"]
    assert ax.get_ylabel() == "driver"
    # The session's result orders them when there is one: the classified cars by position,
    # then the others by laps completed (car 81 retired, unclassified).
    result = pd.DataFrame(
        {"driver_number": [4, 81, 1], "position": [1, None, 2], "number_of_laps": [50, 12, 50]}
    )
    ax = stint_chart(stints, positions, result).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["NOR", "VER", "81"]
    assert ax.get_ylabel() == "result order"
    ax = stint_chart(stints[stints["driver_number"] != 81]).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["NOR", "VER"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["soft", "medium", "hard"]


def test_lines_take_the_team_colour_and_a_teammate_is_dashed():
    from matplotlib.colors import to_hex

    from racemap.reporting.race_page import position_chart

    positions = pd.DataFrame(
        {
            "driver_number": [1, 11, 4, 81, 99, 4],
            "name_acronym": ["VER", "PER", "NOR", "PIA", "XXX", "NOR"],
            # OpenF1's colours; one not a colour at all (a recording's typo, say)
            "team_colour": ["3671C6", "3671c6", "FF8000", "FF8000", "#zz", "FF8000"],
            "recorded_at": pd.to_datetime(["2024-09-22T12:00"] * 5 + ["2024-09-22T12:30"]),
            "position": [1, 2, 3, 4, 5, 3],
        }
    )
    lines = {line.get_label(): line for line in position_chart(positions).axes[0].get_lines()}
    drawn = {
        label: (to_hex(line.get_color()), line.get_linestyle()) for label, line in lines.items()
    }
    assert drawn["NOR"] == ("#ff8000", "-") and drawn["PIA"] == ("#ff8000", "--")
    assert drawn["PER"] == ("#3671c6", "-") and drawn["VER"] == ("#3671c6", "--")
    assert drawn["XXX"][0] not in ("#ff8000", "#3671c6") and drawn["XXX"][1] == "-"
    # Each line holds its last position to the last change of all (the end of the session).
    ends = {label: (line.get_xdata()[-1], line.get_ydata()[-1]) for label, line in lines.items()}
    assert ends["VER"] == (pd.Timestamp("2024-09-22T12:30"), 1)


def test_a_page_can_show_chosen_drivers_and_a_typo_names_the_choices():
    from racemap.errors import UsageError
    from racemap.reporting.race_page import choose, only, sync_command

    laps = pd.DataFrame(
        {"driver_number": [1, 4, 81, 2], "name_acronym": ["VER", "NOR", "PIA", None]}
    )
    positions = laps.iloc[[0, 2]]  # NOR never changed place: no position row
    wanted = choose(["nor", 81, " 2 "], laps, positions)
    assert wanted == ["NOR", "81", "2"]
    assert list(only(laps, wanted)["driver_number"]) == [4, 81, 2]
    assert list(only(positions, wanted)["driver_number"]) == [81]
    assert only(laps, choose([], laps)) is laps
    # As papermill's -p gives them: one acronym or car number, or a text listing several (a
    # text was read letter by letter, "no driver N, O, R"; a number failed with a TypeError).
    assert choose("NOR", laps) == ["NOR"] and choose(81, laps) == ["81"]
    assert choose("nor, PIA 2", laps) == ["NOR", "PIA", "2"]
    assert choose("", laps) == choose(None, laps) == []
    with pytest.raises(UsageError) as raised:
        choose(["VER", "NRO", 44], laps, positions)
    assert str(raised.value) == (
        "no driver NRO, 44 in this session's race data: choose among NOR, PIA, VER, 2"
    )
    with pytest.raises(UsageError, match="none \\(no race data: run racemap sync\\)"):
        choose(["VER"], laps.iloc[0:0])
    with pytest.raises(UsageError, match="run racemap sync --race-id 1 --sessions qualifying"):
        choose(["VER"], laps.iloc[0:0], sync=sync_command(1, "qualifying"))
    # No drivers synced (Brazil 2024): no acronym at all, car numbers still choose.
    numbered = pd.DataFrame({"driver_number": [1, 44], "name_acronym": [float("nan")] * 2})
    assert list(only(numbered, choose([44], numbered))["driver_number"]) == [44]


@pytest.mark.parametrize(
    ("mart", "staging"),
    [
        ("race_laps", "stg_openf1__laps"),
        ("race_stints", "stg_openf1__stints"),
        ("race_pit_stops", "stg_openf1__pit"),
        ("race_positions", "stg_openf1__position"),
        ("race_weather", "stg_openf1__weather"),
        ("race_overtakes", "stg_openf1__overtakes"),
    ],
)
def test_every_synced_row_is_in_its_mart_once(synced, mart, staging):
    """The join to the race keys (macro race_data_join) neither drops nor doubles a row of a
    synced session: a car's rows, the session's own (weather), both cars of an overtake. The
    snapshot has no race control or intervals (data/README.md): the dbt unit tests
    test_race_control_messages_* cover messages about no car and about one."""
    db, _result, _lines = synced
    synced_rows = query(
        db,
        f"select count(*) from racemap_staging.{staging} where session_key in"
        " (select session_key from racemap_intermediate.int_race_data_drivers)",
    )
    assert synced_rows != [(0,)], staging
    assert query(db, f"select count(*) from racemap.{mart}") == synced_rows, mart
