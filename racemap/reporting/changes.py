"""What changed since the last run on this database, and the record of every run's verdict.

After the apply and the validations, a run keeps the state it leaves behind in racemap's own
tables (migration ``0004_monitoring``): each race's mapping, the keys it holds and whether it
needs attention (``racemap.run_race_states``), and each OpenF1 meeting's and session's start,
called-off and removed flags (``racemap.run_openf1_states``). Comparing that state with the one
the previous run kept, in SQL, gives the changes (``racemap.run_changes``, ``changes.csv``,
``summary.json``'s ``changes``). The first run on a database has nothing to compare with and
says so. A dry run compares but keeps no state: the next run compares with the last real one.

Every run that reaches the database, failed ones too, leaves a row in ``racemap.runs`` (its
verdict, when, where it stopped): what ``racemap status`` reads. The row is written when the run
starts its work, unfinished (:func:`record_stage`), and completed when it ends
(:func:`record_run`): a run killed outright stays an unfinished row, ``failed`` at the stage it
was in.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from psycopg2 import sql

from racemap.db import query_dicts
from racemap.reporting import plural
from racemap.settings import RacesTable

CHANGE_COLUMNS = ["kind", "race_id", "meeting_key", "session_key", "before", "after"]
# The kinds of change, in the order the reports list them.
KINDS = [
    "attention_new",
    "attention_resolved",
    "race_mapped",
    "race_unmapped",
    "mapping_changed",
    "keys_set",
    "keys_changed",
    "keys_cleared",
    "race_added",
    "race_removed",
    "meeting_added",
    "meeting_removed",
    "meeting_called_off",
    "meeting_rescheduled",
    "session_added",
    "session_removed",
    "session_called_off",
    "session_rescheduled",
]
KEEP_STATES = 5  # the snapshots of the last runs kept (only the latest is compared with)

_RACE_STATES = """
insert into racemap.run_race_states (
    run_id, race_id, season, race_name, status, reason, meeting_key, session_key,
    held_meeting_key, held_session_key, attention_kind, attention_detail
)
select {run}, m.race_id, m.season, m.race_name, m.status, m.reason, m.meeting_key,
    m.session_key, held.meeting_key, held.session_key, a.kind, a.detail
from racemap.race_openf1_mapping as m
left join (
    select distinct on (cast({id} as text)) cast({id} as text) as race_id,
        openf1_meeting_key as meeting_key, openf1_session_key as session_key
    from {races}
    order by cast({id} as text)
) as held on held.race_id = m.race_id
left join racemap.races_needing_attention as a on a.race_id = m.race_id
"""

# Called off as stg_openf1__meetings.sql has it: is_cancelled, or an official name "CALLED OFF".
_OPENF1_STATES = """
insert into racemap.run_openf1_states (
    run_id, entity, key, meeting_key, season, name, starts_at, is_cancelled, is_removed
)
select %(run)s, 'meeting', meeting_key, meeting_key, year, meeting_name, date_start,
    coalesce(is_cancelled, false) or upper(trim(meeting_official_name)) like 'CALLED OFF%%',
    removed_at is not null
from raw.openf1_meetings
union all
select %(run)s, 'session', session_key, meeting_key, year, session_name, date_start,
    coalesce(is_cancelled, false), removed_at is not null
from raw.openf1_sessions
"""

_PREVIOUS = """
select r.run_id, r.finished_at
from racemap.runs as r
where r.run_id <> %(run)s
    and exists (select 1 from racemap.run_race_states as s where s.run_id = r.run_id)
order by coalesce(r.finished_at, r.started_at) desc
limit 1
"""

_KEYS = (
    "coalesce(cast({0}meeting_key as text), '-') || ' / '"
    " || coalesce(cast({0}session_key as text), '-')"
)


def _keys(prefix: str) -> str:
    return _KEYS.format(prefix)


# One statement: every change of the races and of OpenF1's schedule between two states.
_COMPARE = f"""
insert into racemap.run_changes (run_id, seq, kind, race_id, meeting_key, session_key, before,
    after)
with cur as (select * from racemap.run_race_states where run_id = %(run)s),
prev as (select * from racemap.run_race_states where run_id = %(prev)s),
races as (
    select coalesce(cur.race_id, prev.race_id) as race_id, cur, prev,
        cur.race_id is not null as in_cur, prev.race_id is not null as in_prev
    from cur full join prev on cur.race_id = prev.race_id
),
race_changes as (
    select 'race_added' as kind, race_id, (cur).meeting_key, (cur).session_key,
        null as before, (cur).status || coalesce(' (' || (cur).reason || ')', '') as after
    from races where not in_prev
    union all
    select 'race_removed', race_id, (prev).meeting_key, (prev).session_key,
        (prev).status || coalesce(' (' || (prev).reason || ')', ''), null
    from races where not in_cur
    union all
    select 'race_mapped', race_id, (cur).meeting_key, (cur).session_key,
        (prev).reason, {_keys("(cur).")}
    from races where (cur).status = 'mapped' and coalesce((prev).status, '') <> 'mapped'
    union all
    select 'race_unmapped', race_id, (prev).meeting_key, (prev).session_key,
        {_keys("(prev).")}, (cur).reason
    from races where in_cur and (prev).status = 'mapped' and (cur).status <> 'mapped'
    union all
    select 'mapping_changed', race_id, (cur).meeting_key, (cur).session_key,
        {_keys("(prev).")}, {_keys("(cur).")}
    from races where (prev).status = 'mapped' and (cur).status = 'mapped'
        and ((cur).meeting_key, (cur).session_key)
            is distinct from ((prev).meeting_key, (prev).session_key)
    union all
    select 'attention_new', race_id, (cur).meeting_key, (cur).session_key,
        null, (cur).attention_kind || ': ' || (cur).attention_detail
    from races where (cur).attention_kind is not null and (prev).attention_kind is null
    union all
    select 'attention_resolved', race_id, (cur).meeting_key, (cur).session_key,
        (prev).attention_kind || ': ' || (prev).attention_detail, null
    from races where in_cur and (prev).attention_kind is not null
        and (cur).attention_kind is null
    union all
    select case
            when (prev).held_meeting_key is null and (prev).held_session_key is null
                then 'keys_set'
            when (cur).held_meeting_key is null and (cur).held_session_key is null
                then 'keys_cleared'
            else 'keys_changed'
        end,
        race_id, coalesce((cur).held_meeting_key, (prev).held_meeting_key),
        coalesce((cur).held_session_key, (prev).held_session_key),
        {_keys("(prev).held_")}, {_keys("(cur).held_")}
    from races where in_cur and in_prev
        and ((cur).held_meeting_key, (cur).held_session_key)
            is distinct from ((prev).held_meeting_key, (prev).held_session_key)
),
ocur as (select * from racemap.run_openf1_states where run_id = %(run)s),
oprev as (select * from racemap.run_openf1_states where run_id = %(prev)s),
openf1 as (
    select coalesce(ocur.entity, oprev.entity) as entity, coalesce(ocur.key, oprev.key) as key,
        coalesce(ocur.meeting_key, oprev.meeting_key) as meeting_key, ocur, oprev,
        oprev.key is not null as in_prev
    from ocur full join oprev on ocur.entity = oprev.entity and ocur.key = oprev.key
),
openf1_changes as (
    select entity || '_added' as kind, entity, key, meeting_key,
        case when (oprev).is_removed then 'removed' end as before,
        (ocur).name || coalesce(', starts ' || (ocur).starts_at, '') as after
    from openf1
    where not coalesce((ocur).is_removed, true) and (not in_prev or (oprev).is_removed)
    union all
    select entity || '_removed', entity, key, meeting_key,
        (oprev).name || coalesce(', starts ' || (oprev).starts_at, ''), 'removed'
    from openf1 where (ocur).is_removed and not (oprev).is_removed
    union all
    select entity || '_called_off', entity, key, meeting_key, (oprev).name, 'called off'
    from openf1 where (ocur).is_cancelled and not (oprev).is_cancelled
        and not (ocur).is_removed
    union all
    select entity || '_rescheduled', entity, key, meeting_key,
        cast((oprev).starts_at as text), cast((ocur).starts_at as text)
    from openf1 where in_prev and (ocur).starts_at is distinct from (oprev).starts_at
        and not (ocur).is_removed and not (oprev).is_removed
),
linked as (
    -- The race a meeting belongs to: the one mapped to it, or holding it, now or before.
    select o.kind, (
            select s.race_id from racemap.run_race_states as s
            where s.run_id in (%(run)s, %(prev)s)
                and o.meeting_key in (s.meeting_key, s.held_meeting_key)
            order by s.run_id = %(run)s desc, s.race_id
            limit 1
        ) as race_id,
        o.meeting_key, case when o.entity = 'session' then o.key end as session_key,
        o.before, o.after
    from openf1_changes as o
),
everything as (
    select * from race_changes
    union all
    select * from linked
)
select %(run)s, row_number() over (
        order by array_position(%(kinds)s::text[], kind), race_id, meeting_key, session_key
    ), kind, race_id, meeting_key, session_key, before, after
from everything
"""


def record_changes(conn, run_id: str, races: RacesTable, dry_run: bool = False) -> dict:
    """Keep this run's state, compare it with the previous run's, record and return the changes.

    ``conn`` is in a transaction the caller commits. Returns ``summary.json``'s ``changes``:
    ``previous_run_id`` (None on the first run), ``total``, ``counts`` by kind and ``list``.
    """
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(_RACE_STATES).format(run=sql.Literal(run_id), id=races.id, races=races.relation)
        )
        cur.execute(_OPENF1_STATES, {"run": run_id})
    previous = query_dicts(conn, _PREVIOUS, {"run": run_id})
    if previous:
        prev = previous[0]
        with conn.cursor() as cur:
            cur.execute(_COMPARE, {"run": run_id, "prev": prev["run_id"], "kinds": KINDS})
    rows = changes_of(conn, run_id)
    with conn.cursor() as cur:
        if dry_run:  # compared, not kept: the next run compares with the last real one
            cur.execute("delete from racemap.run_race_states where run_id = %s", (run_id,))
            cur.execute("delete from racemap.run_openf1_states where run_id = %s", (run_id,))
        cur.execute(
            "with kept as (select run_id from racemap.runs"
            "   where run_id in (select distinct run_id from racemap.run_race_states)"
            "   order by coalesce(finished_at, started_at) desc limit %s)"
            " delete from racemap.run_race_states where run_id <> %s"
            "   and run_id not in (select run_id from kept)",
            (KEEP_STATES, run_id),
        )
        cur.execute(
            "delete from racemap.run_openf1_states where run_id not in"
            " (select distinct run_id from racemap.run_race_states)"
        )
    return summarise(
        rows,
        previous[0]["run_id"] if previous else None,
        previous[0]["finished_at"] if previous else None,
    )


def changes_of(conn, run_id: str) -> list[dict]:
    """The changes a run recorded, in report order."""
    return query_dicts(
        conn,
        "select " + ", ".join(CHANGE_COLUMNS) + " from racemap.run_changes"
        " where run_id = %s order by seq",
        (run_id,),
    )


def summarise(rows: list[dict], previous_run_id: str | None, previous_at=None) -> dict:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["kind"]] = counts.get(row["kind"], 0) + 1
    if isinstance(previous_at, datetime):
        previous_at = previous_at.isoformat(timespec="seconds")
    return {
        "previous_run_id": previous_run_id,
        "previous_finished_at": previous_at,
        "first_run": previous_run_id is None,
        "total": len(rows),
        "counts": counts,
        "list": rows,
    }


def describe(changes: dict) -> str:
    """One line: what changed since the previous run (or that there was none)."""
    if not changes or changes.get("first_run"):
        return "first run on this database: nothing to compare with"
    if not changes["total"]:
        return f"nothing changed since run {changes['previous_run_id']}"
    counts = ", ".join(f"{n} {kind}" for kind, n in changes["counts"].items())
    return f"{plural(changes['total'], 'change')} since run {changes['previous_run_id']}: {counts}"


def record_run(db, run_id: str, summary: dict, started_at: datetime, log=print) -> None:
    """``racemap.runs``: this run's verdict and finish, as far as the database is reachable
    (:func:`record_verdict`)."""
    changes = summary.get("changes") or {}
    row = {
        "run_id": run_id,
        "started_at": started_at,
        "verdict": summary["verdict"],
        "stopped_at": summary.get("stopped_at"),
        "error": summary.get("error"),
        "dry_run": bool(summary.get("dry_run")),
        "seasons": ",".join(str(s) for s in summary.get("seasons") or []),
        "attention_count": len(summary.get("attention") or []),
        "changes_count": changes.get("total") if changes else None,
        "previous_run_id": changes.get("previous_run_id"),
    }
    record_verdict(db, "runs", row, f"run {run_id}", log)


# What an unfinished row says until its run or sync ends; what it keeps saying if it never does.
UNFINISHED = (
    "did not finish: it stopped without a word (killed, or its machine or database stopped)"
)

# A row unfinished whose command is gone: no session of this database's server carries its run
# id in its name (the run lock's connection does, racemap.runtime.run_lock, while it lives).
# ``r`` is the runs or sync_runs row.
GONE = """(r.finished_at is not null or not exists (
    select 1 from pg_stat_activity as a
    where a.application_name like 'racemap %%'
        and position(' ' || r.run_id || ' ' in a.application_name || ' ') > 0
))"""


def record_stage(db, table: str, row: dict, stage: str) -> None:
    """A run or sync (``table`` ``runs`` or ``sync_runs``) entering ``stage``: its row, written
    unfinished the first time (verdict ``failed``, ``finished_at`` null, the error
    :data:`UNFINISHED`), now at ``stage``; :func:`record_verdict` completes it when the command
    ends. Never raises, says nothing: the stage itself fails on a database gone, and a table
    not yet made or upgraded (a sync's first load) leaves the command to its final record."""
    import psycopg2

    from racemap.errors import RacemapError

    row = {**row, "verdict": "failed", "stopped_at": stage, "error": UNFINISHED}
    with contextlib.suppress(RacemapError, psycopg2.Error):
        _upsert(db, table, {**row, "finished_at": None}, ("stopped_at",), unfinished_only=True)


def record_verdict(db, table: str, row: dict, what: str, log=print) -> None:
    """``row`` (its key ``run_id``) into ``racemap.<table>`` with ``finished_at`` now; the row
    already there (written unfinished by :func:`record_stage`) takes its values and the finish.
    The record of a run's or a sync's verdict (``racemap.runs``, ``racemap.sync_runs``).

    Never raises: a command that could not reach its database, or stopped before racemap's
    tables existed, is not recorded (one line says so, for an error)."""
    from racemap.errors import RacemapError, first_line

    columns = [c for c in row if c != "run_id"] + ["finished_at"]
    try:
        _upsert(db, table, {**row, "finished_at": datetime.now(UTC)}, columns)
    except RacemapError as exc:
        log(f"{what} not recorded in racemap.{table}: {exc}")
    except Exception as exc:  # psycopg2.Error and the like: the verdict stands, one line
        log(f"{what} not recorded in racemap.{table}: {first_line(exc)}")


def _upsert(db, table: str, row: dict, set_, unfinished_only: bool = False) -> None:
    """``row`` into ``racemap.<table>`` (key ``run_id``); a row already there takes the
    columns ``set_`` (only while unfinished, with ``unfinished_only``). Nothing when the
    table is not there (a command that stopped before racemap's tables were made)."""
    statement = sql.SQL(
        "insert into {} as r ({}) values ({}) on conflict (run_id) do update set {}{}"
    ).format(
        sql.Identifier("racemap", table),
        sql.SQL(", ").join(map(sql.Identifier, row)),
        sql.SQL(", ").join(sql.Placeholder() * len(row)),
        sql.SQL(", ").join(sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c)) for c in set_),
        sql.SQL(" where r.finished_at is null" if unfinished_only else ""),
    )
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute("select to_regclass(%s)", (f"racemap.{table}",))
        if cur.fetchone()[0] is not None:
            cur.execute(statement, list(row.values()))
