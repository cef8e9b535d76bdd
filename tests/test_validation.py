"""The Great Expectations checkpoints fail, and name the expectation, when the data breaks them.

Raw checks run on a fresh database holding one season of the bundled snapshot (its primary keys
dropped where a test needs a duplicate). The races and mapping checks share one pipeline run:
each test breaks a copy of the races table (named through the races_table var, as an
application's own table would be) or one mart row, and puts it back.
"""

from __future__ import annotations

import signal
import uuid
from contextlib import contextmanager

import pytest
from conftest import database_copy, gx_root, query

from racemap.checks import validate
from racemap.checks.validate import loaded_seasons
from racemap.cli import main as cli_main
from racemap.errors import RacemapError
from racemap.openf1.loader import ensure_raw_tables, load_openf1
from racemap.settings import RacesTable, coverage_threshold


def run_checkpoint(*args, **kwargs):
    """A checkpoint alone, in the tests' GX context (a run uses its database's)."""
    return validate.run_checkpoint(*args, gx_root=gx_root(), **kwargs)


RACES = RacesTable("public", "races", "id")


def execute(db, statement: str, params=()) -> None:
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(statement, params or None)


def failed_names(outcome) -> list[str]:
    """The failed expectations (failures and attention), without the observed values:
    'suite: expectation(column)'."""
    lines = outcome.failed + outcome.attention
    return sorted(line.split(" [")[0].split(" '")[0] for line in lines)


# -- raw --------------------------------------------------------------------------------------


@pytest.fixture
def raw_db(fresh_db):
    """The 2024 meetings and sessions of the bundled snapshot."""
    with fresh_db.transaction() as conn:
        ensure_raw_tables(conn)
    load_openf1(fresh_db, [2024], offline=True)
    return fresh_db


def test_raw_checkpoint_passes_on_the_snapshot(raw_db, tmp_path):
    outcome = run_checkpoint(raw_db, "raw", RACES, tmp_path, "test-raw-clean")
    assert outcome.success, outcome.failed
    assert outcome.evaluated == 10 and outcome.run_name == "test-raw-clean"
    assert (tmp_path / "validation" / "index.html").is_file()


def test_duplicated_meeting_key_in_raw_fails(raw_db, tmp_path):
    execute(raw_db, "alter table raw.openf1_meetings drop constraint openf1_meetings_pkey")
    execute(
        raw_db,
        "insert into raw.openf1_meetings"
        " select * from raw.openf1_meetings where meeting_key = 1233",
    )
    outcome = run_checkpoint(raw_db, "raw", RACES, tmp_path, "test-raw-duplicate")
    assert not outcome.success
    assert failed_names(outcome) == [
        "raw_openf1_meetings: expect_column_values_to_be_unique(meeting_key)"
    ]
    assert "1 unexpected" in outcome.failed[0] or "2 unexpected" in outcome.failed[0]


def test_duplicated_and_null_session_key_in_raw_fail(raw_db, tmp_path):
    execute(raw_db, "alter table raw.openf1_sessions drop constraint openf1_sessions_pkey")
    execute(raw_db, "alter table raw.openf1_sessions alter column session_key drop not null")
    execute(
        raw_db,
        "insert into raw.openf1_sessions"
        " select * from raw.openf1_sessions where session_key = 9673",
    )
    execute(
        raw_db,
        "insert into raw.openf1_sessions"
        " select * from raw.openf1_sessions where session_key = 9672",
    )
    execute(
        raw_db,
        "update raw.openf1_sessions set session_key = null where ctid = ("
        " select max(ctid) from raw.openf1_sessions where session_key = 9672)",
    )
    outcome = run_checkpoint(raw_db, "raw", RACES, tmp_path, "test-raw-session-keys")
    assert failed_names(outcome) == [
        "raw_openf1_sessions: expect_column_values_to_be_unique(session_key)",
        "raw_openf1_sessions: expect_column_values_to_not_be_null(session_key)",
    ]


def test_session_of_a_missing_meeting_in_raw_fails(raw_db, tmp_path):
    execute(raw_db, "delete from raw.openf1_meetings where meeting_key = 1233")
    outcome = run_checkpoint(raw_db, "raw", RACES, tmp_path, "test-raw-orphan")
    assert failed_names(outcome) == ["raw_openf1_sessions: unexpected_rows_expectation"]
    assert "every session's meeting_key exists in raw.openf1_meetings" in outcome.failed[0]


def test_loaded_season_without_rows_fails(raw_db, tmp_path):
    # OpenF1 answered with records for 2019 once, and the rows are not there.
    execute(
        raw_db,
        "insert into raw.openf1_loads (endpoint, season, url, status, rows_received, started_at)"
        " values ('meetings', 2019, 'snapshot:meetings.json?year=2019', 'ok', 5, now())",
    )
    outcome = run_checkpoint(raw_db, "raw", RACES, tmp_path, "test-raw-season")
    assert failed_names(outcome) == [
        "raw_openf1_meetings: expect_column_distinct_values_to_contain_set(year)",
        "raw_openf1_sessions: expect_column_distinct_values_to_contain_set(year)",
    ]
    assert "missing [2019]" in outcome.failed[0]


def test_season_openf1_has_nothing_for_is_not_required(raw_db, tmp_path):
    # An empty season (404 "No results found.", or the snapshot ends before it) is no failure.
    execute(
        raw_db,
        "insert into raw.openf1_loads (endpoint, season, url, status, rows_received, started_at)"
        " values ('meetings', 2026, 'snapshot:meetings.json?year=2026', 'ok', 0, now())",
    )
    assert run_checkpoint(raw_db, "raw", RACES, tmp_path, "test-raw-empty-season").success


def test_empty_raw_tables_fail(fresh_db, tmp_path):
    with fresh_db.transaction() as conn:
        ensure_raw_tables(conn)
    outcome = run_checkpoint(fresh_db, "raw", RACES, tmp_path, "test-raw-empty")
    assert "raw_openf1_meetings: expect_table_row_count_to_be_between" in failed_names(outcome)


# -- races and mapping (one pipeline run) -----------------------------------------------------


@pytest.fixture(scope="module")
def mapped(mapped_template):
    """A copy of the session's mapped database, for this module's tests to break."""
    with database_copy(mapped_template[0]) as db:
        yield db


@contextmanager
def races_copy(db):
    """A copy of public.races (no constraints): the races table the checkpoint validates."""
    name = f"races_{uuid.uuid4().hex[:8]}"
    execute(db, f"create table public.{name} as select * from public.races")
    try:
        yield RacesTable("public", name, "id"), name
    finally:
        execute(db, f"drop table public.{name}")


def test_the_raw_checks_and_the_models_agree_on_the_loaded_seasons(mapped):
    """validate.loaded_seasons (read before dbt builds) is int_seasons_loaded's rule: both over
    the run's loads, and over a load of race-weekend data alone, which loads no season."""
    modelled = "select season from racemap_intermediate.int_seasons_loaded order by 1"
    assert loaded_seasons(mapped) == [2023, 2024, 2025]
    assert [s for (s,) in query(mapped, modelled)] == [2023, 2024, 2025]
    execute(
        mapped,
        "insert into raw.openf1_loads (endpoint, season, url, status, rows_received, started_at)"
        " values ('session_result', 2019, 'snapshot:session_result.json?year=2019', 'ok', 5,"
        " now())",
    )
    try:
        # int_seasons_loaded is a view: it reads the new load as it is now, as the checks do.
        assert [s for (s,) in query(mapped, modelled)] == [2023, 2024, 2025]
        assert loaded_seasons(mapped) == [2023, 2024, 2025]
    finally:
        execute(mapped, "delete from raw.openf1_loads where season = 2019")


def test_mapping_checkpoint_passes_after_the_run(mapped, tmp_path):
    outcome = run_checkpoint(mapped, "mapping", RACES, tmp_path, "test-mapping-clean")
    assert outcome.passed, outcome.failed + outcome.attention
    assert outcome.evaluated == 12


def test_a_second_checkpoint_compiles_no_template_and_writes_no_config(
    mapped, tmp_path, monkeypatch
):
    """GX makes new views, with Jinja environments of their own, for every validation result it
    publishes; their templates are compiled once in a process (racemap.checks.data_docs). The
    data source keeps its assets from one checkpoint to the next (great_expectations.yml is not
    written again), and the context reads no config_variables.yml (GX parsed it for every
    value it read)."""
    import jinja2
    import yaml

    compiled: list[str] = []
    compile_template = jinja2.Environment.compile

    def counting(self, source, name=None, *args, **kwargs):
        compiled.append(name)
        return compile_template(self, source, name, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    config_file = gx_root() / "gx" / "great_expectations.yml"
    first = run_checkpoint(mapped, "mapping", RACES, tmp_path / "a", "test-compiled-a")
    once, written = len(compiled), config_file.stat().st_mtime_ns
    second = run_checkpoint(mapped, "mapping", RACES, tmp_path / "b", "test-compiled-b")
    assert first.passed and second.passed
    assert compiled[once:] == []  # every page of the second checkpoint from compiled code
    assert config_file.stat().st_mtime_ns == written
    assert (tmp_path / "b" / "validation" / "index.html").read_text().count("test-compiled-b")
    config = yaml.safe_load(config_file.read_text())
    assert config["config_variables_file_path"] is None


def test_duplicated_keys_in_races_fail(mapped, tmp_path):
    with races_copy(mapped) as (races, name):
        # Race 1100 (Australia 2023) takes the keys of race 1121 (Bahrain 2024).
        execute(
            mapped,
            f"update public.{name} set (openf1_meeting_key, openf1_session_key) = (1229, 9472)"
            " where id = '1100'",
        )
        outcome = run_checkpoint(mapped, "mapping", races, tmp_path, "test-races-duplicate")
    assert not outcome.success
    # A key held twice is a failure; race 1100 holding keys that are not its own is attention.
    assert sorted(line.split(" [")[0] for line in outcome.failed) == [
        "races_openf1_keys: expect_column_values_to_be_unique(openf1_meeting_key)",
        "races_openf1_keys: expect_column_values_to_be_unique(openf1_session_key)",
    ]
    assert any("each race holds its own mapping" in line for line in outcome.attention)


def test_session_of_the_wrong_meeting_fails(mapped, tmp_path):
    with races_copy(mapped) as (races, name):
        # Bahrain 2024's race session (9472) under the pre-season testing meeting (1228).
        execute(mapped, f"update public.{name} set openf1_meeting_key = 1228 where id = '1121'")
        outcome = run_checkpoint(mapped, "mapping", races, tmp_path, "test-races-wrong-meeting")
    assert failed_names(outcome) == ["races_openf1_keys: unexpected_rows_expectation"]
    # A race holding keys that are not its mapping needs a person: attention, not failure.
    assert outcome.success and not outcome.passed
    assert "each race holds its own mapping" in outcome.attention[0]
    assert "[1 unexpected rows]" in outcome.attention[0]


def test_sprint_session_mapped_fails(mapped, tmp_path):
    with races_copy(mapped) as (races, name):
        # China 2024 (1125): the Sprint 9672 instead of the race 9673, same meeting.
        execute(mapped, f"update public.{name} set openf1_session_key = 9672 where id = '1125'")
        outcome = run_checkpoint(mapped, "mapping", races, tmp_path, "test-races-sprint")
    assert failed_names(outcome) == ["races_openf1_keys: unexpected_rows_expectation"]


def test_key_without_its_partner_fails(mapped, tmp_path):
    with races_copy(mapped) as (races, name):
        execute(mapped, f"update public.{name} set openf1_session_key = null where id = '1125'")
        outcome = run_checkpoint(mapped, "mapping", races, tmp_path, "test-races-half")
    assert failed_names(outcome) == ["races_openf1_keys: unexpected_rows_expectation"]


@contextmanager
def changed_row(db, table: str, column: str, value, where: str):
    (before,) = query(db, f"select {column} from {table} where {where}")[0]
    execute(db, f"update {table} set {column} = %s where {where}", (value,))
    try:
        yield
    finally:
        execute(db, f"update {table} set {column} = %s where {where}", (before,))


def test_coverage_below_the_threshold_fails(mapped, tmp_path):
    with changed_row(mapped, "racemap.mapping_coverage", "coverage", 0.9583, "season = 2024"):
        outcome = run_checkpoint(mapped, "mapping", RACES, tmp_path, "test-coverage")
        assert failed_names(outcome) == [
            "mapping_coverage: expect_column_values_to_be_between(coverage)"
        ]
        assert outcome.success and outcome.attention  # races need a person: attention
        lowered = run_checkpoint(
            mapped, "mapping", RACES, tmp_path, "test-coverage-95", threshold=0.95
        )
        assert lowered.passed, lowered.failed + lowered.attention


def test_reason_outside_the_fixed_words_fails(mapped, tmp_path):
    with changed_row(
        mapped, "racemap.race_openf1_mapping", "reason", "gone_fishing", "race_id = '1169'"
    ):
        outcome = run_checkpoint(mapped, "mapping", RACES, tmp_path, "test-reason")
    assert failed_names(outcome) == [
        "race_openf1_mapping: expect_column_values_to_be_in_set(reason)"
    ]
    assert "gone_fishing" in outcome.failed[0]


def test_racemap_validate_exits_non_zero_with_one_line(mapped, tmp_path, capsys):
    with races_copy(mapped) as (_races, name):
        execute(mapped, f"update public.{name} set openf1_session_key = 9672 where id = '1125'")
        execute(
            mapped,
            f"update public.{name} set (openf1_meeting_key, openf1_session_key) = (1229, 9472)"
            " where id = '1100'",
        )
        code = cli_main(
            [
                "validate",
                "--database-url",
                mapped.url,
                "--reports-dir",
                str(tmp_path),
                "--var",
                f"races_table={name}",
            ]
        )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1  # a key held twice: failed (the wrong keys alone would be attention, 3)
    failed = [line for line in err if line.startswith("validation failed: ")]
    assert len(failed) == 1
    for name in (
        "races_openf1_keys: expect_column_values_to_be_unique(openf1_meeting_key)",
        "races_openf1_keys: expect_column_values_to_be_unique(openf1_session_key)",
    ):
        assert name in failed[0]
    assert any(
        line.startswith("attention: races_openf1_keys: unexpected_rows_expectation") for line in err
    )
    assert (tmp_path / "validation" / "index.html").is_file()


def test_coverage_threshold_var():
    assert coverage_threshold({}) == 1.0
    assert coverage_threshold({"coverage_threshold": "0.9"}) == 0.9
    for bad in ("1.5", "-0.1", "most"):
        with pytest.raises(RacemapError, match="coverage_threshold"):
            coverage_threshold({"coverage_threshold": bad})


def test_one_gx_worker_serves_a_process_until_a_run_leaves_an_answer_unread(mapped, tmp_path):
    """racemap run checks in GxWorker.shared(): a second run of the process (a notebook, these
    tests) finds GX imported. A run that stops with a checkpoint still running gives the worker
    up (release), so the next run never reads that answer: it gets a new worker."""
    from racemap.checks.gx_worker import GxWorker

    worker = GxWorker.shared()
    assert GxWorker.shared() is worker
    outcome = worker.run_checkpoint(
        mapped, "raw", RACES, tmp_path / "a", "test-worker-raw", gx_root=gx_root()
    )
    assert outcome.success and outcome.evaluated > 0
    worker.release()  # nothing owed: it stays
    assert worker.usable() and GxWorker.shared() is worker

    worker.submit(mapped, "raw", RACES, tmp_path / "b", "test-worker-unread")
    worker.release()  # the run ended before the answer came
    assert not worker.usable()
    fresh = GxWorker.shared()
    assert fresh is not worker
    outcome = fresh.run_checkpoint(
        mapped, "raw", RACES, tmp_path / "c", "test-worker-fresh", gx_root=gx_root()
    )
    assert outcome.run_name == "test-worker-fresh" and outcome.success


def test_a_worker_stopped_while_owing_an_answer_ends_quietly(mapped, tmp_path, capfd):
    """An interrupted run closes its worker's pipe with a checkpoint still running: the worker
    finishes it, finds no one to answer and ends without a word (it printed a BrokenPipeError
    traceback under the run's one line)."""
    from racemap.checks.gx_worker import GxWorker

    worker = GxWorker()
    try:
        worker.run_checkpoint(
            mapped, "raw", RACES, tmp_path / "a", "test-gone-a", gx_root=gx_root()
        )
        worker.submit(mapped, "raw", RACES, tmp_path / "b", "test-gone-b", gx_root=gx_root())
    finally:
        worker.close()  # the run is over: the pipe closes before the answer is read
    # 0: it returned on its own; -SIGTERM: close stopped it first (a slow checkpoint)
    assert worker._process.exitcode in (0, -signal.SIGTERM)
    assert "Traceback" not in capfd.readouterr().err


def test_expectations_stopped_by_one_error_are_one_phrase_naming_it_once():
    """A connection refused mid-checkpoint fails every expectation after it with the same error
    (recorded: a role with connection limit 2): one phrase, the error once, without
    SQLAlchemy's wrapping or libpq's prefix; an error of one expectation keeps its name."""
    refused = (
        '(psycopg2.OperationalError) connection to server at "127.0.0.1", port 5432 failed: '
        'FATAL:  too many connections for role "lim"\n\n'
        "(Background on this error at: https://sqlalche.me/e/21/e3q8)"
    )
    stopped = {
        validate._could_not_run(refused): [
            "races_openf1_keys: expect_column_values_to_be_unique(openf1_meeting_key)",
            "race_openf1_mapping: expect_column_values_to_not_be_null(race_id)",
            "race_openf1_mapping: expect_column_values_to_be_unique(race_id)",
        ],
        validate._could_not_run('(psycopg2.errors.UndefinedTable) relation "x" does not exist'): [
            "mapping_coverage: expect_column_values_to_not_be_null(season)"
        ],
    }
    assert validate._grouped(stopped) == [
        "3 expectations could not run (races_openf1_keys, race_openf1_mapping) "
        '[error: too many connections for role "lim"]',
        "mapping_coverage: expect_column_values_to_not_be_null(season) "
        '[error: relation "x" does not exist]',
    ]
