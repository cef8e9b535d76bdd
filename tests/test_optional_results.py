"""Optional means optional: a results table without a driver column skips the driver link, and
one the role cannot read skips the results check, each with one line; the run goes on.

Real runs (offline, the bundled data) on a real PostgreSQL; the least-privileged role is created
here, with the README's routine grants but none on public.results.
"""

from __future__ import annotations

import dataclasses

from conftest import SCRATCH, query, run_pipeline

from racemap.cli import main as cli_main
from racemap.db import parse_database_url


def test_a_results_table_without_a_driver_column_skips_the_driver_link(applied_db, tmp_path):
    with applied_db.transaction() as conn, conn.cursor() as cur:
        cur.execute("alter table public.results drop column driver_id")
    lines: list[str] = []
    result = run_pipeline(applied_db, tmp_path / "r", log=lines.append)
    assert result.verdict == "ok"
    skipped = [line for line in lines if line.startswith("driver link skipped")]
    assert skipped == [
        "driver link skipped: public.results has no column driver_id (name it with --var "
        "result_driver_id_column=...)"
    ]
    # The results check still ran (it needs race, car number and position only).
    assert result.summary["results_check"] == {"agree": 70}
    assert (
        query(applied_db, "select count(*), count(driver_id) from racemap.race_driver_links")[0][1]
        == 0
    )


def test_a_results_table_the_role_cannot_read_skips_the_check(demo_db, tmp_path):
    with SCRATCH.role(demo_db, password="runner-pw") as role:
        with demo_db.transaction() as conn, conn.cursor() as cur:
            cur.execute(f'grant select on public.races to "{role}"')  # not public.results
            cur.execute(f'grant create on database "{demo_db.dbname}" to "{role}"')
        assert cli_main(["migrate", "--database-url", demo_db.url]) == 0  # as the owner
        with demo_db.transaction() as conn, conn.cursor() as cur:
            cur.execute(
                f'grant update (openf1_meeting_key, openf1_session_key) on public.races to "{role}"'
            )
        url = dataclasses.replace(demo_db, user=role, password="runner-pw").url
        lines: list[str] = []
        result = run_pipeline(parse_database_url(url), tmp_path / "r", log=lines.append)
        assert (result.verdict, result.summary["mapped"]) == ("ok", 70)
        assert [line for line in lines if "results check skipped" in line] == [
            "results check skipped: this role cannot read public.results (grant select on "
            f"public.results to {role} to check each mapping against the results)"
        ]
        assert result.summary["results_check"] == {"no_results": 70}
