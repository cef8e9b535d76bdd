"""Writing the mapping into the application's races table, safely, and putting it back.

``apply_updates`` runs in one transaction with the touched rows locked: every update lands or none
does. Keys another race already holds are reported as ``conflict`` and skipped; keys a race holds
that differ from the mapping (``change``) are only replaced with ``allow_changes``. Every write is
recorded in ``racemap.mapping_history`` in the same transaction, so ``restore`` can undo the last
apply.
"""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass, field

import psycopg2
from psycopg2 import sql
from psycopg2.extras import execute_values

from .db import query_dicts
from .errors import RacemapError
from .settings import RacesTable


@dataclass
class ApplyResult:
    run_id: str
    rows: list[dict] = field(default_factory=list)  # each update with its status

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r["status"] == status)

    @property
    def applied(self) -> int:
        return self.count("applied")

    @property
    def conflicts(self) -> int:
        return self.count("conflict")


def ensure_history_tables(conn) -> None:
    """racemap.mapping_runs / mapping_history are created by racemap's migrations: this brings
    them (and every table of racemap) to the newest revision; a no-op once there."""
    from .migrations import upgrade

    upgrade(conn)


def _who() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no login name in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()} (racemap)"


def read_updates(conn) -> list[dict]:
    return query_dicts(
        conn,
        "select race_id, current_meeting_key, current_session_key, meeting_key, session_key,"
        " action, race_name, method from racemap.mapping_updates order by race_id",
    )


# Called between the history insert and the update; tests use it to inject a failure.
_before_update_hook = None


def apply_updates(
    db, run_id: str, races: RacesTable, allow_changes: bool = False, dry_run: bool = False
) -> ApplyResult:
    """Apply ``racemap.mapping_updates`` to the races table in one transaction."""
    result = ApplyResult(run_id)
    t = races
    try:
        with db.transaction() as conn, conn.cursor() as cur:
            ensure_history_tables(conn)
            updates = read_updates(conn)
            cur.execute(
                "create temp table pending (race_id text primary key, meeting_key integer,"
                " session_key integer, action text, status text) on commit drop"
            )
            if updates:
                execute_values(
                    cur,
                    "insert into pending values %s",
                    [
                        (u["race_id"], u["meeting_key"], u["session_key"], u["action"], "pending")
                        for u in updates
                    ],
                )
            # Lock the rows we will touch, then judge each update on the locked state.
            cur.execute(
                sql.SQL(
                    "select 1 from {rel} r join pending p on cast(r.{id} as text) = p.race_id"
                    " for update of r"
                ).format(rel=t.relation, id=t.id)
            )
            # Judge on what each race holds now, not when dbt built the mart: keys set by
            # hand in between make a fill a change, which is never applied silently.
            cur.execute(
                sql.SQL("""
                update pending p set action = case
                    when r.openf1_meeting_key is null and r.openf1_session_key is null
                    then 'fill' else 'change' end
                from {rel} r
                where cast(r.{id} as text) = p.race_id
            """).format(rel=t.relation, id=t.id)
            )
            if not allow_changes:
                cur.execute("""
                    update pending set status = 'held_back' where action = 'change'
                """)
            cur.execute(
                sql.SQL("""
                update pending p set status = 'unchanged'
                from {rel} r
                where cast(r.{id} as text) = p.race_id and p.status = 'pending'
                  and r.openf1_meeting_key is not distinct from p.meeting_key
                  and r.openf1_session_key is not distinct from p.session_key
            """).format(rel=t.relation, id=t.id)
            )
            cur.execute(
                sql.SQL("""
                update pending p set status = 'conflict'
                where p.status = 'pending' and exists (
                    select 1 from {rel} r
                    where cast(r.{id} as text) <> p.race_id
                      and (r.openf1_meeting_key = p.meeting_key
                           or r.openf1_session_key = p.session_key))
            """).format(rel=t.relation, id=t.id)
            )
            cur.execute("select race_id, status, action from pending")
            judged = {race_id: (status, action) for race_id, status, action in cur.fetchall()}
            for u in updates:
                s, action = judged[u["race_id"]]
                if s == "pending":
                    s = "dry_run" if dry_run else "applied"
                result.rows.append({**u, "action": action, "status": s})
            if dry_run:
                conn.rollback()
                return result
            cur.execute(
                "insert into racemap.mapping_runs (run_id, kind, allow_changes, rows_applied,"
                " rows_conflicting, rows_held_back, applied_by) values"
                " (%s, 'apply', %s, %s, %s, %s, %s)",
                (
                    run_id,
                    allow_changes,
                    result.applied,
                    result.conflicts,
                    result.count("held_back"),
                    _who(),
                ),
            )
            cur.execute(
                sql.SQL("""
                insert into racemap.mapping_history (run_id, race_id, action, meeting_key_before,
                    session_key_before, meeting_key_after, session_key_after)
                select %s, p.race_id, p.action, r.openf1_meeting_key, r.openf1_session_key,
                    p.meeting_key, p.session_key
                from pending p join {rel} r on cast(r.{id} as text) = p.race_id
                where p.status = 'pending'
            """).format(rel=t.relation, id=t.id),
                (run_id,),
            )
            if _before_update_hook:
                _before_update_hook()
            # Two steps so that keys moving between races (with --allow-changes) never collide.
            cur.execute(
                sql.SQL("""
                update {rel} r set openf1_meeting_key = null, openf1_session_key = null
                from pending p where cast(r.{id} as text) = p.race_id and p.status = 'pending'
            """).format(rel=t.relation, id=t.id)
            )
            cur.execute(
                sql.SQL("""
                update {rel} r set openf1_meeting_key = p.meeting_key,
                    openf1_session_key = p.session_key
                from pending p where cast(r.{id} as text) = p.race_id and p.status = 'pending'
            """).format(rel=t.relation, id=t.id)
            )
    except psycopg2.errors.UniqueViolation as exc:
        detail = (exc.diag.message_detail or str(exc)).strip()
        raise RacemapError(f"apply rolled back, nothing changed: {detail}") from None
    return result


@dataclass
class RestoreResult:
    run_id: str
    restores_run_id: str | None
    restored: int = 0
    skipped: list[str] = field(default_factory=list)


def restore_last_apply(db, run_id: str, races: RacesTable) -> RestoreResult:
    """Put back what the rows held before the last apply that has not been restored yet.

    A race whose keys were changed again since (by hand) is left alone and listed in ``skipped``.
    """
    t = races
    with db.transaction() as conn, conn.cursor() as cur:
        ensure_history_tables(conn)
        cur.execute(
            "select run_id from racemap.mapping_runs r where kind = 'apply' and rows_applied > 0"
            " and not exists (select 1 from racemap.mapping_runs x"
            "   where x.kind = 'restore' and x.restores_run_id = r.run_id)"
            " order by applied_at desc limit 1"
        )
        row = cur.fetchone()
        if row is None:
            raise RacemapError("nothing to restore: no apply has changed the races table yet")
        last = row[0]
        result = RestoreResult(run_id, last)
        cur.execute(
            "create temp table undo on commit drop as"
            " select race_id, meeting_key_before, session_key_before, meeting_key_after,"
            " session_key_after from racemap.mapping_history where run_id = %s",
            (last,),
        )
        cur.execute(
            sql.SQL(
                "select 1 from {rel} r join undo u on cast(r.{id} as text) = u.race_id"
                " for update of r"
            ).format(rel=t.relation, id=t.id)
        )
        cur.execute(
            sql.SQL("""
            delete from undo u using {rel} r
            where cast(r.{id} as text) = u.race_id
              and (r.openf1_meeting_key is distinct from u.meeting_key_after
                   or r.openf1_session_key is distinct from u.session_key_after)
            returning u.race_id
        """).format(rel=t.relation, id=t.id)
        )
        result.skipped = sorted(r[0] for r in cur.fetchall())
        cur.execute(
            "insert into racemap.mapping_runs (run_id, kind, restores_run_id, applied_by)"
            " values (%s, 'restore', %s, %s)",
            (run_id, last, _who()),
        )
        cur.execute(
            sql.SQL("""
            insert into racemap.mapping_history (run_id, race_id, action, meeting_key_before,
                session_key_before, meeting_key_after, session_key_after)
            select %s, race_id, 'restore', meeting_key_after, session_key_after,
                meeting_key_before, session_key_before
            from undo
        """),
            (run_id,),
        )
        cur.execute(
            sql.SQL("""
            update {rel} r set openf1_meeting_key = null, openf1_session_key = null
            from undo u where cast(r.{id} as text) = u.race_id
        """).format(rel=t.relation, id=t.id)
        )
        cur.execute(
            sql.SQL("""
            update {rel} r set openf1_meeting_key = u.meeting_key_before,
                openf1_session_key = u.session_key_before
            from undo u where cast(r.{id} as text) = u.race_id
        """).format(rel=t.relation, id=t.id)
        )
        result.restored = cur.rowcount
        cur.execute(
            "update racemap.mapping_runs set rows_applied = %s where run_id = %s",
            (result.restored, run_id),
        )
    return result
