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
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg2
from psycopg2 import sql
from psycopg2.extras import execute_values

from racemap.db import query_dicts, relation_exists
from racemap.errors import RacemapError, first_line
from racemap.runtime import KEY_COLUMNS, require_writable
from racemap.settings import RacesTable


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


@contextmanager
def _key_conflict_rolls_back(db, failure: str):
    """``db``'s transaction and a cursor; a key another race holds (a unique violation) rolls
    all of it back and is one line: ``failure`` with PostgreSQL's detail as ``{detail}``."""
    try:
        with db.transaction() as conn, conn.cursor() as cur:
            yield conn, cur
    except psycopg2.errors.UniqueViolation as exc:
        detail = (exc.diag.message_detail or str(exc)).strip()
        raise RacemapError(failure.format(detail=detail)) from None


def ensure_history_tables(conn) -> None:
    """racemap.mapping_runs / mapping_history are created by racemap's migrations: this brings
    them (and every table of racemap) to the newest revision; a no-op once there."""
    from racemap.migrations import upgrade

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
        " action, race_name, method, reason from racemap.mapping_updates order by race_id",
    )


_KEY_COLUMNS = (("meeting_key", "openf1_meeting_key"), ("session_key", "openf1_session_key"))


def _judge(cur, t: RacesTable, allow_changes: bool) -> None:
    """Set each pending row's action and status on the races table as it is now (rows locked).

    A key another race holds is a conflict unless that race gives it up in this same apply
    (a swap, or a chain of moves): conflicts are marked until none is left, since a race that
    cannot move keeps its keys and may block another in turn.
    """
    # Judge on what each race holds now, not when dbt built the mart: keys set by hand in
    # between make a fill a change, which is never applied silently.
    cur.execute(
        sql.SQL("""
        update pending p set
            action = case
                when r.openf1_meeting_key is null and r.openf1_session_key is null then 'fill'
                when p.meeting_key is null and p.session_key is null then 'clear'
                else 'change' end,
            status = case
                when r.openf1_meeting_key is not distinct from p.meeting_key
                    and r.openf1_session_key is not distinct from p.session_key
                then 'unchanged' else 'pending' end
        from {rel} r
        where cast(r.{id} as text) = p.race_id
    """).format(rel=t.relation, id=t.id)
    )
    if not allow_changes:
        cur.execute(
            "update pending set status = 'held_back'"
            " where status = 'pending' and action in ('change', 'clear')"
        )
    # A holder gives a key up when it is applied in this run to keys without it.
    for key, column in _KEY_COLUMNS:
        statement = sql.SQL("""
            update pending p set status = 'conflict'
            from {rel} r
            where p.status = 'pending' and p.{key} is not null
              and r.{column} = p.{key} and cast(r.{id} as text) <> p.race_id
              and not exists (
                  select 1 from pending q
                  where q.race_id = cast(r.{id} as text) and q.status = 'pending'
                    and q.{key} is distinct from p.{key})
        """).format(rel=t.relation, id=t.id, key=sql.Identifier(key), column=sql.Identifier(column))
        cur.execute(statement)
    while True:  # a race that cannot move keeps its keys: it may block another in turn
        marked = 0
        for key, column in _KEY_COLUMNS:
            cur.execute(
                sql.SQL("""
                update pending p set status = 'conflict'
                from pending q, {rel} r
                where p.status = 'pending' and q.status = 'conflict'
                  and q.race_id = cast(r.{id} as text) and r.{column} = p.{key}
                  and q.race_id <> p.race_id
            """).format(
                    rel=t.relation, id=t.id, key=sql.Identifier(key), column=sql.Identifier(column)
                )
            )
            marked += cur.rowcount
        if not marked:
            break


def apply_updates(
    db, run_id: str, races: RacesTable, allow_changes: bool = False, dry_run: bool = False
) -> ApplyResult:
    """Apply ``racemap.mapping_updates`` to the races table in one transaction.

    fill always; change and clear (stale keys) with ``allow_changes`` only, swaps and chains in
    one run. Every write is in ``racemap.mapping_history``, so ``restore`` can undo it.
    """
    result = ApplyResult(run_id)
    t = races
    with _key_conflict_rolls_back(
        db,
        "apply rolled back, nothing changed: {detail} (the races table changed during the "
        "run: run racemap run again)",
    ) as (conn, cur):
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
        # Lock the rows to touch and the rows holding the keys they want, then judge. A dry run
        # writes nothing and locks nothing: FOR UPDATE needs the UPDATE grant, which a dry run
        # does not ask for (it stopped with an unexpected InsufficientPrivilege).
        if not dry_run:
            cur.execute(
                sql.SQL("""
                select 1 from {rel} r where cast(r.{id} as text) in (select race_id from pending)
                   or r.openf1_meeting_key in (select meeting_key from pending)
                   or r.openf1_session_key in (select session_key from pending)
                for update of r
            """).format(rel=t.relation, id=t.id)
            )
        _judge(cur, t, allow_changes)
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
        _write_keys(cur, t, "pending")
    return result


def _write_keys(cur, t: RacesTable, source: str) -> int:
    """Write the keys of temp table ``source`` (race_id, meeting_key, session_key, status) into
    the races table for its rows whose status is 'pending'. Two steps, so that keys moving
    between races (a swap, a chain) never collide with the unique constraints.

    The application's own triggers, rules or row-level security on its table may refuse a
    write (an error) or skip it silently (a BEFORE trigger returning null, a DO INSTEAD NOTHING
    rule, a policy hiding the row): either is one line and the caller's transaction rolls back,
    nothing written; a key another race holds is left to the caller (its UniqueViolation)."""
    names = {"rel": t.relation, "id": t.id, "source": sql.Identifier(source)}
    cur.execute(sql.SQL("select count(*) from {source} where status = 'pending'").format(**names))
    wanted = cur.fetchone()[0]
    refused = (
        f"the races table {t.name} {{what}}: its triggers, rules and row-level security must "
        f"let racemap's role set {', '.join(KEY_COLUMNS)} (and read the rows); nothing was "
        "written"
    )
    try:
        cur.execute(
            sql.SQL(
                "update {rel} r set openf1_meeting_key = null, openf1_session_key = null"
                " from {source} p where cast(r.{id} as text) = p.race_id"
                " and p.status = 'pending'"
            ).format(**names)
        )
        cleared = cur.rowcount
        cur.execute(
            sql.SQL(
                "update {rel} r set openf1_meeting_key = p.meeting_key,"
                " openf1_session_key = p.session_key"
                " from {source} p where cast(r.{id} as text) = p.race_id"
                " and p.status = 'pending'"
            ).format(**names)
        )
    except psycopg2.errors.UniqueViolation:
        raise
    except psycopg2.Error as exc:
        what = f"refused racemap's update of its key columns ({first_line(exc)})"
        raise RacemapError(refused.format(what=what)) from None
    written = min(cleared, cur.rowcount)
    if written < wanted:  # more: an id on several rows, as before
        what = f"let {written} of {wanted} key updates through"
        raise RacemapError(refused.format(what=what))
    return cur.rowcount


@dataclass
class RestoreResult:
    run_id: str
    restores_run_id: str | None
    restored: int = 0
    skipped: list[str] = field(default_factory=list)
    already_restored: list[tuple[str, str]] = field(default_factory=list)  # (apply, by restore)


def restore_last_apply(
    db, run_id: str, races: RacesTable, target_run_id: str | None = None
) -> RestoreResult:
    """Put back what the rows held before the latest apply not yet restored (or ``target_run_id``).

    A race whose keys were changed again since (by hand, or by a later apply) is left alone and
    listed in ``skipped``. A key another race holds now rolls the whole restore back.
    """
    t = races
    with _key_conflict_rolls_back(
        db,
        "restore rolled back, nothing changed: {detail}, held by another race now: clear "
        "that race's keys (or run racemap run --allow-changes), then restore again",
    ) as (conn, cur):
        if not relation_exists(conn, "racemap", "mapping_runs"):  # nothing made where no run was
            raise RacemapError("nothing to restore: no apply has changed the races table yet")
        require_writable(conn, db.display)  # it said 'unexpected ReadOnlySqlTransaction'
        ensure_history_tables(conn)
        applies = query_dicts(
            conn,
            "select r.run_id, x.run_id as restored_by from racemap.mapping_runs r"
            " left join racemap.mapping_runs x"
            "   on x.kind = 'restore' and x.restores_run_id = r.run_id"
            " where r.kind = 'apply' and r.rows_applied > 0"
            " order by r.applied_at desc, r.run_id desc",
        )
        if target_run_id is not None:
            chosen = [a for a in applies if a["run_id"] == target_run_id]
            if not chosen:
                raise RacemapError(
                    f"nothing to restore: no apply with run id {target_run_id!r} changed the"
                    " races table (racemap status lists the runs)"
                )
            if chosen[0]["restored_by"]:
                raise RacemapError(
                    f"nothing to restore: run {target_run_id} was already restored by run "
                    f"{chosen[0]['restored_by']}"
                )
            last = target_run_id
            newer = []
        else:
            pending = [a for a in applies if not a["restored_by"]]
            if not pending:
                latest = applies[0] if applies else None
                raise RacemapError(
                    "nothing to restore: no apply has changed the races table yet"
                    if latest is None
                    else f"nothing to restore: every apply is restored (the latest, run "
                    f"{latest['run_id']}, by run {latest['restored_by']})"
                )
            last = pending[0]["run_id"]
            newer = [(a["run_id"], a["restored_by"]) for a in applies[: applies.index(pending[0])]]
        result = RestoreResult(run_id, last, already_restored=newer)
        cur.execute(
            "create temp table undo on commit drop as"
            " select race_id, meeting_key_before as meeting_key,"
            " session_key_before as session_key, meeting_key_after, session_key_after,"
            " 'pending'::text as status"
            " from racemap.mapping_history where run_id = %s",
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
            update undo u set status = 'skipped' from {rel} r
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
            """
            insert into racemap.mapping_history (run_id, race_id, action, meeting_key_before,
                session_key_before, meeting_key_after, session_key_after)
            select %s, race_id, 'restore', meeting_key_after, session_key_after,
                meeting_key, session_key
            from undo where status = 'pending'
        """,
            (run_id,),
        )
        result.restored = _write_keys(cur, t, "undo")
        cur.execute(
            "update racemap.mapping_runs set rows_applied = %s where run_id = %s",
            (result.restored, run_id),
        )
    return result
