"""Applying mappings safely: dry run, conflicts, change policy, failures, history, restore,
new races, lookups. Each test owns a database holding the demo races."""

from __future__ import annotations

import json

import psycopg2
import pytest
from conftest import AS_OF, keys, mapping_updates, query, racemap_command, run_pipeline

from racemap.errors import RacemapError
from racemap.mapping import apply as apply_mod
from racemap.mapping import dbt
from racemap.mapping.lookup import NotMapped, race_for_meeting, race_keys
from racemap.settings import RacesTable

RACES = RacesTable.from_vars(None)


def all_keys(db):
    return query(
        db, "select id, openf1_meeting_key, openf1_session_key from public.races order by id"
    )


def rebuild(db):
    """dbt build alone, as racemap run does between load and apply."""
    db.export_env()
    dbt.build({"as_of": AS_OF})


def test_dry_run_leaves_races_untouched(demo_db, tmp_path):
    """A dry run on a database racemap never applied to never migrates: the table's owner runs
    ``racemap migrate`` once first. (The dry run after that migration, no keys and no history:
    test_unattended's least-privileged role, whose dry run needs no UPDATE grant.)"""
    from racemap.cli import main as cli_main

    with pytest.raises(RacemapError, match="a dry run changes nothing, so run `racemap migrate`"):
        run_pipeline(demo_db, tmp_path, dry_run=True)
    assert query(
        demo_db,
        "select count(*) from information_schema.columns where table_name = 'races'"
        " and column_name like 'openf1_%'",
    ) == [(0,)]
    assert cli_main(["migrate", "--database-url", demo_db.url]) == 0


def test_hand_set_key_is_a_conflict_and_the_rest_applies(built_db, tmp_path):
    # By hand, the 2024 British GP was given the 2025 British GP's meeting.
    query(built_db, "update public.races set openf1_meeting_key = 1277 where id = '1132'")
    result = run_pipeline(built_db, tmp_path)
    # The run applies the rest; the hand-set key and the race it blocks need a person.
    assert (result.verdict, result.exit_code, result.failures) == ("attention", 3, [])
    assert {row["race_id"]: row["kind"] for row in result.attention} == {
        "1132": "stale_keys",
        "1156": "conflict",
    }
    assert keys(built_db, "1156") == (None, None)  # British GP 2025: its meeting is taken
    assert keys(built_db, "1132") == (1277, None)  # the hand-set key is never overwritten
    # The mapping is what should be: 1156 maps to 1277 all the same.
    assert query(
        built_db,
        "select status, meeting_key from racemap.race_openf1_mapping where race_id = '1156'",
    ) == [("mapped", 1277)]
    assert mapping_updates(tmp_path, "status")["1132"] == "held_back"
    assert mapping_updates(tmp_path, "status")["1156"] == "conflict"
    assert result.summary["updates_applied"] == 68


def test_conflict_found_at_apply_time_is_reported_not_raised(built_db):
    # Between the build and the apply, someone gives meeting 1225 to another race.
    query(built_db, "update public.races set openf1_meeting_key = 1225 where id = '1'")
    result = apply_mod.apply_updates(built_db, "t-conflict", RACES)
    by_race = {row["race_id"]: row["status"] for row in result.rows}
    assert by_race["1119"] == "conflict"
    assert result.applied == 69 and result.conflicts == 1
    assert keys(built_db, "1119") == (None, None) and keys(built_db, "1") == (1225, None)


def test_keys_set_by_hand_after_the_build_are_not_overwritten(built_db):
    # The mart said "fill" (no keys at build time); by the apply the race holds keys.
    query(
        built_db,
        "update public.races set openf1_meeting_key = 9999,"
        " openf1_session_key = 99999 where id = '1121'",
    )
    result = apply_mod.apply_updates(built_db, "t-late-hand", RACES)
    row = next(r for r in result.rows if r["race_id"] == "1121")
    assert (row["action"], row["status"]) == ("change", "held_back")
    assert keys(built_db, "1121") == (9999, 99999) and result.applied == 69


def test_raw_data_failing_validation_stops_before_dbt_and_the_apply(built_db, tmp_path):
    # A session whose meeting OpenF1 never sent: the raw checkpoint fails.
    query(
        built_db,
        "insert into raw.openf1_sessions (session_key, meeting_key, session_name,"
        " year, record, source, fetched_at) values (99999, 1, 'Race', 2024, '{}', 'live', now())",
    )
    with pytest.raises(RacemapError, match="raw OpenF1 data failed validation"):
        run_pipeline(built_db, tmp_path)
    assert query(
        built_db, "select count(*) from public.races where openf1_meeting_key is not null"
    ) == [(0,)]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["stopped_at"] == "validate_raw"
    assert summary["validations"]["failed"] == 1
    assert (
        "raw_openf1_sessions: unexpected_rows_expectation"
        in summary["validations"]["failed_expectations"][0]
    )
    assert (tmp_path / "validation" / "index.html").is_file()


def test_failure_mid_apply_applies_nothing(built_db, monkeypatch):
    before = all_keys(built_db)

    def boom(*_args):  # after the run and its history are written, before the keys are
        raise RuntimeError("injected failure between history and update")

    monkeypatch.setattr(apply_mod, "_write_keys", boom)
    with pytest.raises(RuntimeError):
        apply_mod.apply_updates(built_db, "t-fail", RACES)
    assert all_keys(built_db) == before
    assert query(built_db, "select count(*) from racemap.mapping_history") == [(0,)]
    assert query(built_db, "select count(*) from racemap.mapping_runs") == [(0,)]


@pytest.mark.parametrize(
    ("trigger", "what"),
    [
        (
            "begin raise exception 'races are read-only here'; end",
            "refused racemap's update of its key columns (races are read-only here)",
        ),
        ("begin return null; end", "let 0 of 70 key updates through"),
    ],
    ids=["raises", "skips"],
)
def test_an_application_trigger_refusing_the_keys_is_one_line_and_nothing_applies(
    built_db, trigger, what
):
    """The application's own trigger on its races table: one that raises was an 'unexpected
    RaiseException ... report it'; one that skips the row (returns null) let the apply record
    70 keys applied that the table never held."""
    query(
        built_db,
        "create function public.guard_races() returns trigger language plpgsql as $$"
        f" {trigger} $$;"
        " create trigger guard_races before update on public.races"
        " for each row execute function public.guard_races()",
    )
    with pytest.raises(RacemapError) as refused:
        apply_mod.apply_updates(built_db, "t-trigger", RACES)
    assert str(refused.value) == (
        f"the races table public.races {what}: its triggers, rules and row-level security "
        "must let racemap's role set openf1_meeting_key, openf1_session_key (and read the "
        "rows); nothing was written"
    )
    assert query(
        built_db, "select count(*) from public.races where openf1_meeting_key is not null"
    ) == [(0,)]
    assert query(built_db, "select count(*) from racemap.mapping_runs") == [(0,)]
    assert query(built_db, "select count(*) from racemap.mapping_history") == [(0,)]
    # An updated_at trigger of the application's, which lets the row through, is no obstacle.
    query(
        built_db,
        "alter table public.races add column updated_at timestamptz;"
        " create or replace function public.guard_races() returns trigger language plpgsql"
        " as $$ begin new.updated_at := now(); return new; end $$",
    )
    assert apply_mod.apply_updates(built_db, "t-updated-at", RACES).applied == 70
    assert query(
        built_db,
        "select count(*) from public.races where openf1_meeting_key is not null"
        " and updated_at is not null",
    ) == [(70,)]


def test_changes_need_allow_changes(applied_db):
    query(
        applied_db,
        "update public.races set openf1_meeting_key = 9999,"
        " openf1_session_key = 99999 where id = '1121'",
    )
    rebuild(applied_db)
    held = apply_mod.apply_updates(applied_db, "t-held", RACES)
    assert [(r["race_id"], r["action"], r["status"]) for r in held.rows] == [
        ("1121", "change", "held_back")
    ]
    assert keys(applied_db, "1121") == (9999, 99999)
    changed = apply_mod.apply_updates(applied_db, "t-change", RACES, allow_changes=True)
    assert changed.applied == 1 and keys(applied_db, "1121") == (1229, 9472)
    assert query(
        applied_db,
        "select meeting_key_before, meeting_key_after, action"
        " from racemap.mapping_history where run_id = 't-change'",
    ) == [(9999, 1229, "change")]


def test_restore_puts_back_the_state_before_the_last_apply(built_db):
    query(
        built_db,
        "update public.races set openf1_meeting_key = 9999,"
        " openf1_session_key = 99999 where id = '1121'",
    )
    before = all_keys(built_db)
    applied = apply_mod.apply_updates(built_db, "t-apply", RACES, allow_changes=True)
    assert applied.applied == 70 and keys(built_db, "1121") == (1229, 9472)
    restored = apply_mod.restore_last_apply(built_db, "t-restore", RACES)
    assert restored.restores_run_id == "t-apply" and restored.restored == 70
    assert all_keys(built_db) == before
    with pytest.raises(RacemapError, match="nothing to restore"):
        apply_mod.restore_last_apply(built_db, "t-restore-2", RACES)
    runs = query(
        built_db,
        "select run_id, kind, restores_run_id from racemap.mapping_runs order by applied_at",
    )
    assert runs == [("t-apply", "apply", None), ("t-restore", "restore", "t-apply")]


def test_restore_command(built_db, capsys, monkeypatch):
    """racemap restore on the database DATABASE_URL names (in this process: the command's
    output, not the process, is the subject)."""
    apply_mod.apply_updates(built_db, "t-apply", RACES)
    monkeypatch.setenv("DATABASE_URL", built_db.url)
    code, out, err = racemap_command(["restore"], capsys)
    assert code == 0, err
    assert "restored 70 races to their keys before run t-apply" in out
    assert query(
        built_db, "select count(*) from public.races where openf1_meeting_key is not null"
    ) == [(0,)]


def test_restore_where_no_run_was_says_so_and_creates_nothing(fresh_db, capsys):
    """The wrong DATABASE_URL, or a database before its first run: one line, and racemap's
    schemas are not made there."""
    from racemap import cli

    assert cli.main(["restore", "--database-url", fresh_db.url]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "racemap: nothing to restore: no apply has changed the races table yet"
    ]
    assert (
        query(fresh_db, "select nspname from pg_namespace where nspname in ('raw', 'racemap')")
        == []
    )


def test_new_race_is_mapped_by_the_next_run_and_nothing_else_moves(applied_db, tmp_path):
    # São Paulo 2025 enters the table after the last run, without keys (and without results).
    query(applied_db, "delete from public.results where race_id = '1165'")
    row = query(
        applied_db,
        "delete from public.races where id = '1165'"
        " returning id, year, round, circuit_id, name, date, time",
    )
    before = all_keys(applied_db)
    query(
        applied_db,
        "insert into public.races (id, year, round, circuit_id, name, date, time)"
        " values (%s, %s, %s, %s, %s, %s, %s)",
        row[0],
    )
    result = run_pipeline(applied_db, tmp_path)
    assert result.summary["updates_applied"] == 1
    after = all_keys(applied_db)
    assert [r for r in after if r not in before] == [("1165", 1273, 9869)]


def test_lookups_mapped_and_unmapped(mapped_demo):
    db, _result, _reports = mapped_demo
    with db.transaction() as conn:
        found = race_keys(conn, "1119")
        assert (found.meeting_key, found.session_key) == (1225, 9189)
        assert race_for_meeting(conn, 1225) == "1119"
        with pytest.raises(NotMapped, match="not mapped: no_meeting") as info:
            race_keys(conn, "1169")
        assert info.value.reason == "no_meeting"
        with pytest.raises(NotMapped, match="not mapped: before_openf1_coverage"):
            race_keys(conn, "1")
        with pytest.raises(NotMapped, match="no race holds meeting 1209"):
            race_for_meeting(conn, 1209)
    # the same in SQL, for the application
    assert query(
        db,
        "select racemap.meeting_key_for_race('1119'),"
        " racemap.session_key_for_race('1119'), racemap.race_for_meeting(1225)",
    ) == [(1225, 9189, "1119")]


def test_lookups_answer_in_a_copy_of_the_database_under_another_name(applied_db):
    """A restore or a copy under another name (applied_db: a copy of the mapped database, with
    no run since): the SQL lookups name the races table without the database they were made in."""
    assert query(
        applied_db,
        "select racemap.session_key_for_race('1119'), racemap.session_key_for_race('1119', 'race')",
    ) == [(9189, 9189)]
    with pytest.raises(psycopg2.errors.RaiseException, match="no race with id 0 in "):
        query(applied_db, "select racemap.meeting_key_for_race('0')")


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (["--race-id", "1119"], 0, "race 1119: meeting_key 1225, session_key 9189"),
        (["--meeting-key", "1225"], 0, "meeting 1225: race_id 1119"),
        (["--race-id", "1169"], 1, "racemap: not mapped: no_meeting (race 1169)"),
        (["--meeting-key", "1209"], 1, "racemap: not mapped: no race holds meeting 1209"),
    ],
)
def test_lookup_command(mapped_demo, args, code, expected, capsys, monkeypatch):
    """racemap lookup on the database DATABASE_URL names (in this process: the command's
    output, not the process, is the subject)."""
    db, _result, _reports = mapped_demo
    monkeypatch.setenv("DATABASE_URL", db.url)
    returncode, out, err = racemap_command(["lookup", *args], capsys)
    assert returncode == code
    out = out if code == 0 else err
    assert out.strip().splitlines()[-1] == expected


def test_a_lookup_of_keys_the_mapping_disagrees_with_says_so(applied_db, capsys):
    """Monaco and Canada 2024 (1128, 1129) swapped by hand in the races table: the lookups
    answer the keys the table holds, and the race's attention line beside them."""
    from racemap.cli import main as cli_main

    keys = dict(
        (race, (meeting, session))
        for race, meeting, session in query(
            applied_db,
            "select race_id, meeting_key, session_key from racemap.race_openf1_mapping"
            " where race_id in ('1128', '1129')",
        )
    )
    query(
        applied_db,
        "update public.races set openf1_meeting_key = null, openf1_session_key = null"
        " where id in ('1128', '1129')",
    )
    for race, other in (("1128", "1129"), ("1129", "1128")):
        query(
            applied_db,
            "update public.races set openf1_meeting_key = %s, openf1_session_key = %s"
            " where id = %s",
            (*keys[other], race),
        )
    url = ["--database-url", applied_db.url]
    canada_meeting = str(keys["1129"][0])
    for args in (
        ["--race-id", "1128"],
        ["--meeting-key", canada_meeting],
        ["--race-id", "1128", "--session", "qualifying"],
    ):
        assert cli_main(["lookup", *url, *args]) == 0, args
        out, err = capsys.readouterr()
        assert "1128" in out and canada_meeting in out, out
        assert err.startswith("attention: race 1128 (") and "but its mapping is meeting" in err
        assert err.count("\n") == 1, err
    assert cli_main(["lookup", *url, "--race-id", "1119"]) == 0
    assert capsys.readouterr().err == ""  # a race as mapped: the answer alone


def test_racemap_migrate_says_why_it_cannot_in_one_line(fresh_db, capsys):
    """A view cannot hold the keys; keys held twice cannot be made unique: each is one line
    with the cause (dbt's run-operation logged it only to dbt.log)."""
    from racemap.cli import main as cli_main

    query(
        fresh_db,
        "create table public.gp (id text, circuit_id text, name text, date date, time text,"
        " openf1_meeting_key integer);"
        " insert into public.gp (id, openf1_meeting_key) values ('a', 1229), ('b', 1229);"
        " create view public.gp_view as select * from public.gp",
    )
    url = ["--database-url", fresh_db.url]
    assert cli_main(["migrate", *url, "--var", "races_table=gp_view"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("racemap: public.gp_view lacks openf1_meeting_key, openf1_session_key")
    assert "it is a view: the keys need a table" in err and err.count("\n") == 1
    assert cli_main(["migrate", *url, "--var", "races_table=gp"]) == 1
    err = capsys.readouterr().err
    assert "migrate_races: could not create unique index" in err and err.count("\n") == 1


def test_a_partitioned_races_table_is_one_line_saying_why_it_cannot_hold_the_keys(fresh_db, capsys):
    """A unique key column on a table partitioned by year is refused by PostgreSQL ('unique
    constraint on partitioned table must include all partitioning columns'): the line said
    that much and nothing of what to do. Now it says why before dbt runs, the table unchanged."""
    from racemap.cli import main as cli_main

    query(
        fresh_db,
        "create table public.races (id text, year integer not null, circuit_id text,"
        " name text, date date, time time, primary key (id, year)) partition by range (year);"
        " create table public.races_all partition of public.races"
        " for values from (1950) to (2100)",
    )
    assert cli_main(["migrate", "--database-url", fresh_db.url]) == 1
    err = capsys.readouterr().err
    assert err == (
        "racemap: public.races lacks openf1_meeting_key, openf1_session_key (with a unique "
        "constraint), and it is a table partitioned by RANGE (year): PostgreSQL makes a column "
        "unique across partitions only together with the partition key, so each key cannot be "
        "unique on its own; keep the races in a table that is not partitioned and name it with "
        "--var races_schema=... --var races_table=...\n"
    )
    assert query(
        fresh_db,
        "select count(*) from pg_attribute where attrelid = 'public.races'::regclass"
        " and attname like 'openf1_%'",
    ) == [(0,)]
