"""Safe to schedule: one run per database at a time, a least-privileged role, errors a person
can act on (restore, lookup). Real PostgreSQL, real runs in child processes."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time

import pytest
from conftest import (
    SCRATCH,
    database_copy,
    lock_held,
    mapping_updates,
    query,
    run_command,
    run_pipeline,
)

from racemap import runtime
from racemap.cli import main as cli_main
from racemap.db import parse_database_url
from racemap.errors import RacemapError
from racemap.mapping.apply import restore_last_apply
from racemap.settings import RacesTable

RACES = RacesTable("public", "races", "id")


def racemap_run(db, reports, *extra) -> subprocess.Popen:
    """``racemap run --offline`` in a child process, as a scheduler would start it."""
    args, env = run_command(db, reports, *extra)
    return subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_concurrent_runs_on_one_and_on_two_databases(mapped_template, tmp_path):
    """Two runs on one database take turns (the second waits for the lock); a run on another
    database at the same time shares no file with them. All three finish ok."""
    with database_copy(mapped_template[0]) as one, database_copy(mapped_template[0]) as two:
        runs = [
            racemap_run(one, tmp_path / "a"),
            racemap_run(one, tmp_path / "b"),
            racemap_run(two, tmp_path / "c"),
        ]
        outputs = [run.communicate(timeout=600) for run in runs]
        codes = [run.returncode for run in runs]
        assert codes == [0, 0, 0], [err[-2000:] for _out, err in outputs]
        waited = [out for out, _err in outputs[:2] if "waiting for run" in out]
        assert len(waited) == 1  # exactly one of the two on the same database waited
        for db in (one, two):
            assert query(
                db, "select count(*) from public.races where openf1_session_key is not null"
            ) == [(70,)]


@pytest.mark.parametrize("command", ["run", "sync"])
def test_a_second_run_gives_up_naming_the_run_that_holds_the_lock(mapped_demo, tmp_path, command):
    """The holder is named as what it is: a sync said "another racemap run holds"."""
    db = mapped_demo[0]
    with lock_held(db, command), pytest.raises(RacemapError) as info:
        run_pipeline(db, tmp_path, lock_timeout=0.5)
    message = str(info.value)
    assert f"another racemap {command} holds" in message
    assert f"{command} 20261125T120000Z-abcdef on " in message and "started 20" in message
    assert "--lock-timeout" in message and "\n" not in message


def test_a_run_that_never_got_the_lock_leaves_the_holders_reports_alone(mapped_demo, tmp_path):
    """A run giving up on the lock published a report set of its failed summary alone over the
    database's reports while the holder (a sync, say) was writing them: the last run's mapping
    report and CSVs were gone, and the sync carried that set over."""
    from racemap.reporting import reports

    db = mapped_demo[0]
    published = reports.ReportSet(tmp_path, "20261125T110000Z-aaaaaa")
    (published.dir / "mapping_report.html").write_text("the last run's report")
    (published.dir / "summary.json").write_text('{"verdict": "ok"}')
    published.publish()
    before = sorted(p.name for p in tmp_path.iterdir())
    with lock_held(db, "sync"), pytest.raises(RacemapError, match="another racemap sync holds"):
        run_pipeline(db, tmp_path, lock_timeout=0.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "mapping_report.html").read_text() == "the last run's report"
    assert json.loads((tmp_path / "summary.json").read_text()) == {"verdict": "ok"}


@pytest.fixture
def runner_role(demo_db):
    """A role that may only read the races table, update its two key columns (granted after
    the migration) and create schemas in the database: the routine grants of the README."""
    password = "runner-pw"
    with SCRATCH.role(demo_db, password=password) as role:
        with demo_db.transaction() as conn, conn.cursor() as cur:
            cur.execute(f'grant select on public.races, public.results to "{role}"')
            cur.execute(f'grant create on database "{demo_db.dbname}" to "{role}"')
        # The role's URL from the database's own (a host and port, or the embedded server's
        # socket directory, which a host:port URL cannot name).
        yield role, dataclasses.replace(demo_db, user=role, password=password).url


def test_a_least_privileged_role_runs_after_racemap_migrate(demo_db, runner_role, tmp_path):
    """The README's routine grants, on a database racemap never ran on: the runner is told to have
    the owner run `racemap migrate` first. Then a dry run needs no UPDATE grant (one by a role
    that may only read stopped at the apply with an unexpected InsufficientPrivilege, its FOR
    UPDATE lock) and changes nothing: no keys, no history (a dry run never migrates: see
    test_apply). A run that writes the keys, without that grant, is one line naming it; with it,
    the run maps and applies all 70."""
    role, url = runner_role
    before_migrate = tmp_path / "before"
    with pytest.raises(RacemapError, match="run `racemap migrate` once as the table's owner"):
        run_pipeline(parse_database_url(url), before_migrate)
    assert query(demo_db, "select count(*) from pg_namespace where nspname like 'racemap%'") == [
        (0,)
    ]  # nothing half-created

    # racemap migrate needs the owner; the runner cannot.
    assert cli_main(["migrate", "--database-url", url]) == 1
    assert cli_main(["migrate", "--database-url", demo_db.url]) == 0
    assert cli_main(["migrate", "--database-url", demo_db.url]) == 0  # idempotent

    # Without UPDATE on the key columns: one line naming the grant.
    with pytest.raises(RacemapError) as info:
        run_pipeline(parse_database_url(url), tmp_path / "no-grant")
    assert f"grant update (openf1_meeting_key, openf1_session_key) on public.races to {role}" in (
        str(info.value)
    )
    # A dry run of the same role, without that grant, runs and leaves the races untouched.
    dry = tmp_path / "dry"
    result = run_pipeline(parse_database_url(url), dry, dry_run=True)
    assert (result.verdict, result.exit_code) == ("ok", 0), result.failures
    assert result.summary["updates"] == 70 and result.summary["updates_applied"] == 0
    assert query(
        demo_db, "select count(*) from public.races where openf1_meeting_key is not null"
    ) == [(0,)]
    assert set(mapping_updates(dry, "status").values()) == {"dry_run"}
    report = (dry / "mapping_report.html").read_text(encoding="utf-8")
    assert "70 mapped race(s) hold no keys" in report
    assert "never applied (a dry run, or no apply yet)" in report
    assert query(demo_db, "select count(*) from racemap.mapping_runs") == [(0,)]  # no history

    with demo_db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            f'grant update (openf1_meeting_key, openf1_session_key) on public.races to "{role}"'
        )
    result = run_pipeline(parse_database_url(url), tmp_path / "ok")
    assert (result.verdict, result.summary["mapped"], result.summary["updates_applied"]) == (
        "ok",
        70,
        70,
    )
    # The run never altered the races table: its owner is still postgres and the runner owns
    # only racemap's own schemas.
    assert query(
        demo_db,
        "select pg_get_userbyid(relowner) from pg_class where oid = 'public.races'::regclass",
    ) == [("postgres",)]
    owned = query(
        demo_db,
        "select nspname from pg_namespace where pg_get_userbyid(nspowner) = %s order by 1",
        (role,),
    )
    assert {name for (name,) in owned} <= set(runtime.OWN_SCHEMAS)


def test_restore_says_what_it_did_and_what_is_left(applied_db, capsys):
    url = applied_db.url
    assert cli_main(["restore", "--database-url", url]) == 0
    out = capsys.readouterr().out
    assert "restored 70 races to their keys before run" in out and "--run-id" in out
    # Again: every apply is restored; said so, nothing changed.
    assert cli_main(["restore", "--database-url", url]) == 1
    err = capsys.readouterr().err
    assert "nothing to restore: every apply is restored (the latest, run " in err
    assert cli_main(["restore", "--database-url", url, "--run-id", "no-such-run"]) == 1
    assert "no apply with run id 'no-such-run'" in capsys.readouterr().err


def test_two_restores_at_once_take_turns(applied_db):
    """The second of two restores started together waited for the first one's rows, found
    every race changed (by the first), said "restored 0 races" with all 70 "left alone
    (changed since)", and recorded a second restore of the same apply. Now it waits for the
    first (the run lock) and then goes one apply further back: here there is none."""

    def restore() -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "racemap.cli", "restore", "--database-url", applied_db.url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("PG")},
        )

    def waiting(condition: str) -> None:
        # This database's sessions only: the other test workers' runs on the same server poll
        # pg_try_advisory_lock too, and one of theirs let the test go on before its restore
        # waited (seen: 30.7 s instead of 1.8).
        mine = f"datname = current_database() and ({condition})"
        deadline = time.monotonic() + 120
        while query(applied_db, f"select count(*) from pg_stat_activity where {mine}") == [(0,)]:
            assert time.monotonic() < deadline, condition
            time.sleep(0.1)

    holder = applied_db.connect()  # the first restore held where it writes the history
    with holder.cursor() as cur:
        cur.execute("lock table racemap.mapping_history in share mode")
    first = restore()
    waiting("wait_event_type = 'Lock' and query like '%insert into racemap.mapping_history%'")
    second = restore()
    # The second is waiting for the run lock the first holds: its lock connection names itself
    # (application_name "racemap restore <run id> <host>") and polls pg_try_advisory_lock, whose
    # text pg_stat_activity shows only for the moment it runs (then the query naming the holder).
    waiting(
        "application_name like 'racemap restore %' and pid <> (select pid from pg_stat_activity"
        " where datname = current_database() and application_name like 'racemap restore %'"
        " order by backend_start limit 1)"
    )
    holder.rollback()
    holder.close()
    outputs = [p.communicate(timeout=120) for p in (first, second)]
    assert first.returncode == 0, outputs[0]
    assert "restored 70 races to their keys before run" in outputs[0][0]
    assert second.returncode == 1, outputs[1]
    assert "nothing to restore: every apply is restored (the latest, run " in outputs[1][1]
    assert query(
        applied_db, "select count(*) from racemap.mapping_runs where kind = 'restore'"
    ) == [(1,)]


def test_a_restore_that_clashes_rolls_back_with_one_line(applied_db):
    """An apply that moved race 1121 from Saudi's keys to Bahrain's; Saudi (1122) holds its
    own keys now, so putting 1121 back would clash: the restore rolls back."""
    saudi = query(
        applied_db,
        "select openf1_meeting_key, openf1_session_key from public.races where id = '1122'",
    )[0]
    bahrain = query(
        applied_db,
        "select openf1_meeting_key, openf1_session_key from public.races where id = '1121'",
    )[0]
    with applied_db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            "insert into racemap.mapping_runs (run_id, kind, rows_applied, applied_by)"
            " values ('moved-1121', 'apply', 1, 'test')"
        )
        cur.execute(
            "insert into racemap.mapping_history (run_id, race_id, action, meeting_key_before,"
            " session_key_before, meeting_key_after, session_key_after)"
            " values ('moved-1121', '1121', 'change', %s, %s, %s, %s)",
            (*saudi, *bahrain),
        )
    with pytest.raises(RacemapError) as info:
        restore_last_apply(applied_db, "t-restore", RACES)
    assert str(info.value).startswith("restore rolled back, nothing changed:")
    assert "\n" not in str(info.value)
    assert query(
        applied_db,
        "select openf1_meeting_key, openf1_session_key from public.races where id = '1121'",
    ) == [bahrain]
    assert query(
        applied_db, "select count(*) from racemap.mapping_runs where kind = 'restore'"
    ) == [(0,)]


def test_lookup_on_a_database_without_races_is_one_line(fresh_db, capsys):
    assert cli_main(["lookup", "--database-url", fresh_db.url, "--race-id", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("racemap: table public.races does not exist") and "\n" not in err


def test_a_role_without_any_grant_is_told_the_grants_not_that_the_table_is_missing(
    demo_db, tmp_path
):
    """information_schema hides what a role may not read: racemap looks the table and its
    columns up in pg_class and pg_attribute, so the line names the grants to give."""
    assert cli_main(["migrate", "--database-url", demo_db.url]) == 0
    with SCRATCH.role(demo_db, password="nogrant-pw") as role:
        url = dataclasses.replace(demo_db, user=role, password="nogrant-pw").url
        with pytest.raises(RacemapError) as info:
            run_pipeline(parse_database_url(url), tmp_path / "reports")
        message = str(info.value)
        assert message.startswith("this role cannot run racemap: ")
        assert f"grant select on public.races to {role}" in message and "\n" not in message


def test_a_races_table_in_a_schema_the_role_may_not_use_is_one_line_naming_the_grant(
    demo_db, tmp_path, capsys
):
    """The grants on a races table outside public are not enough without USAGE on its schema:
    the run stopped with `unexpected InsufficientPrivilege: permission denied for schema app`,
    and lookup and validate likewise; each is one line naming the grant now."""
    query(demo_db, "create schema app")
    query(demo_db, "create table app.grand_prix as select * from public.races where year = 2024")
    variables = {"races_schema": "app", "races_table": "grand_prix"}
    var_args = ["--var", "races_schema=app", "--var", "races_table=grand_prix"]
    assert cli_main(["migrate", "--database-url", demo_db.url, *var_args]) == 0
    with SCRATCH.role(demo_db, password="schema-pw") as role:
        url = dataclasses.replace(demo_db, user=role, password="schema-pw").url
        with demo_db.transaction() as conn, conn.cursor() as cur:
            cur.execute(f'grant select on app.grand_prix to "{role}"')
            cur.execute(
                "grant update (openf1_meeting_key, openf1_session_key) on app.grand_prix"
                f' to "{role}"'
            )
            cur.execute(f'grant create on database "{demo_db.dbname}" to "{role}"')
        grant = f"grant usage on schema app to {role}"
        with pytest.raises(RacemapError) as info:
            run_pipeline(parse_database_url(url), tmp_path / "reports", variables=variables)
        assert str(info.value) == f"this role cannot run racemap: {grant}"
        assert cli_main(["lookup", "--database-url", url, "--race-id", "1125", *var_args]) == 1
        err = capsys.readouterr().err.strip()
        assert err == f"racemap: this role cannot read app.grand_prix: {grant}", err
        # Granted, the role runs (and owns racemap's schemas); the grant taken back, export and
        # validate are one line too.
        query(demo_db, f'grant usage on schema app to "{role}"')
        result = run_pipeline(parse_database_url(url), tmp_path / "ok", variables=variables)
        assert result.verdict == "ok", result.failures
        query(demo_db, f'revoke usage on schema app from "{role}"')
        capsys.readouterr()
        export = ["export", "--format", "csv", "--output", str(tmp_path / "x.csv")]
        validate = ["validate", "--reports-dir", str(tmp_path / "ok")]
        for command in (export, validate):
            assert cli_main([*command, "--database-url", url, *var_args]) == 1, command
            err = capsys.readouterr().err.strip()
            assert err == f"racemap: this role cannot read app.grand_prix: {grant}", err
        # status reads the races table through the function of the last build: one line too
        assert cli_main(["status", "--database-url", url]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("racemap: permission denied for schema app: this role lacks a grant")
        assert "\n" not in err


def test_after_a_run_the_application_may_drop_and_retype_its_own_columns(
    mapped_template, tmp_path, capsys
):
    """racemap's views over the races table tied every one of its columns (select *): after a
    run, the application could neither drop nor retype a column of its own table ("cannot alter
    type of a column used by a view or rule"), then not its id and key columns either, which a
    view read live. No view depends on the table now; the live keys are read through a function
    (stg_app__race_keys), and the copy (a database made from the template) reads its own."""
    with database_copy(mapped_template[0]) as db:
        views_on_races = (
            "select count(*) from pg_depend as d join pg_rewrite as r on d.objid = r.oid"
            " where d.refobjid = 'public.races'::regclass"
        )
        assert query(db, views_on_races) == [(0,)]
        query(db, "alter table public.races drop column url")
        query(db, "alter table public.races alter column name type varchar(200)")
        query(db, "alter table public.races alter column round type bigint")
        query(db, "alter table public.races alter column id type varchar(40)")
        query(db, "alter table public.races alter column openf1_meeting_key type bigint")
        assert cli_main(["status", "--database-url", db.url]) == 0  # the live keys still read
        # Gone (renamed away): one line; recreated: read again.
        query(db, "alter table public.races rename to races_before")
        capsys.readouterr()
        assert cli_main(["status", "--database-url", db.url]) == 1
        said = (
            "the database is not as racemap's last build left it (relation"
            ' "public.races" does not exist): run racemap run'
        )
        assert capsys.readouterr().err.splitlines() == [f"racemap: {said}"]
        assert cli_main(["status", "--json", "--database-url", db.url]) == 1
        assert json.loads(capsys.readouterr().out) == {"verdict": "failed", "error": said}
        assert cli_main(["validate", "--database-url", db.url, "--reports-dir", str(tmp_path)]) == 1
        assert capsys.readouterr().err.splitlines()[-1] == (
            "racemap: table public.races does not exist in this database: name the races table"
            " with --var races_schema=... --var races_table=..., or check DATABASE_URL"
        )  # validate reads the table itself: which table, and how to name another
        query(db, "create table public.races (like public.races_before including all)")
        query(db, "insert into public.races select * from public.races_before")
        assert cli_main(["status", "--database-url", db.url]) == 0


def test_a_runner_after_another_role_ran_racemap_is_told_who_owns_its_schemas(applied_db, tmp_path):
    """racemap's schemas made by another role's first run (an administrator's): the README's
    grants are not enough, whatever schema grants are added, since the migrations ALTER and dbt
    replaces what only their owner may. The line said to grant usage and create on each schema;
    given those, the next run failed on 'permission denied for table alembic_version' and told
    the runner to have their owner run racemap once, which changes nothing for the runner."""
    with SCRATCH.role(applied_db, password="runner-pw") as role:
        with applied_db.transaction() as conn, conn.cursor() as cur:
            cur.execute(f'grant select on public.races, public.results to "{role}"')
            cur.execute(
                f'grant update (openf1_meeting_key, openf1_session_key) on public.races to "{role}"'
            )
            cur.execute(f'grant create on database "{applied_db.dbname}" to "{role}"')
        runner = dataclasses.replace(applied_db, user=role, password="runner-pw")
        expected = (
            "this role cannot run racemap: racemap's schemas racemap, racemap_intermediate, "
            "racemap_seeds, racemap_snapshots, racemap_staging, raw hold objects of postgres, "
            f"not of {role}: racemap upgrades and rebuilds them, which only their owner may, so "
            f"run racemap as postgres, or make {role} the owner of those schemas and of "
            f"everything in them (ALTER SCHEMA ... OWNER TO {role}, ALTER TABLE ... OWNER TO "
            f"{role}, ...)"
        )
        for grant in ("", "usage, create"):  # the same line with the schema grants given
            if grant:
                with applied_db.transaction() as conn, conn.cursor() as cur:
                    for schema in runtime.OWN_SCHEMAS:
                        cur.execute("select 1 from pg_namespace where nspname = %s", (schema,))
                        if cur.fetchone():
                            cur.execute(f'grant {grant} on schema {schema} to "{role}"')
            with pytest.raises(RacemapError) as refused:
                run_pipeline(runner, tmp_path / f"reports-{bool(grant)}")
            assert str(refused.value) == expected


def test_row_level_security_hiding_every_race_from_the_runner_is_one_line(
    demo_db, runner_role, tmp_path
):
    """The application turns on row-level security with no policy for racemap's role: the run
    saw no race, said 'ok' and recorded every race as removed. Now one line names the policy
    to create, before anything is made; with it the run maps as before."""
    role, url = runner_role
    assert cli_main(["migrate", "--database-url", demo_db.url]) == 0
    query(
        demo_db,
        f'grant update (openf1_meeting_key, openf1_session_key) on public.races to "{role}";'
        " alter table public.races enable row level security",
    )
    with pytest.raises(RacemapError) as refused:
        run_pipeline(parse_database_url(url), tmp_path / "hidden")
    assert str(refused.value) == (
        f"this role cannot run racemap: create policy racemap on public.races to {role} using "
        f"(true) (row-level security hides every row of public.races from {role}: racemap "
        "would see no race; or alter role ... bypassrls)"
    )
    assert query(demo_db, "select count(*) from pg_namespace where nspname = 'raw'") == [(0,)]
    # A policy for another role hides them just the same; one for the runner lets it run.
    query(demo_db, "create policy others on public.races to postgres using (true)")
    with pytest.raises(RacemapError, match="row-level security hides every row"):
        run_pipeline(parse_database_url(url), tmp_path / "hidden")
    query(demo_db, f'create policy racemap on public.races to "{role}" using (true)')
    with parse_database_url(url).transaction() as conn:
        assert runtime.missing_grants(conn, RacesTable.from_vars(None), dry_run=False) == []
