"""``racemap status``: the state of a database's mapping from the database alone, in a second.

No fetch, no build, no dbt or Great Expectations: it reads what runs recorded. The last run
(``racemap.runs``: id, when, verdict; the last that ended, or one killed outright, whose row
stayed unfinished: ``changes.record_stage``), the races needing attention now (the view
``racemap.races_needing_attention``), the races mapped but holding no keys (their mapping not
applied: after ``racemap restore`` or a dry run), the race data checks the last ``racemap sync``
failed (``racemap.race_data_checks``: each names a race and a driver), the last run's changes
(``racemap.run_changes``) and the freshness of the raw OpenF1 data (``raw.openf1_loads``). The
verdict and exit code are racemap/verdict.py's: 0 ok, 3 attention (a race needs a person, races
do not hold their mapping's keys, a race data check failed, or the raw data is stale while a
season runs), 1 failed (the last run or the last sync failed, no run is recorded yet, or the
database cannot be reached).

**Freshness.** OpenF1 republishes its schedule while a season runs, so the raw data should be
fetched at least weekly then: it is ``warn`` after ``RACEMAP_FRESHNESS_WARN_DAYS`` (3) days
and ``error`` after ``RACEMAP_FRESHNESS_ERROR_DAYS`` (8) since the last successful live fetch of
an endpoint. A season runs from the first to the day after the last session of this year's
loaded sessions; outside it (the off-season, or this year's season not loaded) no window
applies (``off_season``). The same windows are dbt source freshness on ``raw.openf1_meetings``
and ``raw.openf1_sessions`` (``models/staging/openf1/_openf1__sources.yml``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from racemap import verdict as verdicts
from racemap.checks import race_data as race_data_checks
from racemap.db import query_dicts
from racemap.errors import printable
from racemap.reporting import plural
from racemap.reporting.changes import GONE, changes_of, describe, summarise
from racemap.reporting.reports import attention_line, attention_rows
from racemap.settings import Environment

# Mapped races that hold neither key (and are not already named as needing attention, e.g. a
# conflict): their mapping is not applied. The keys are read live (stg_app__race_keys).
_UNAPPLIED_RACES = """
select m.race_id from racemap.race_openf1_mapping as m
join racemap_staging.stg_app__race_keys as k on k.race_id = m.race_id
where m.status = 'mapped'
    and k.current_meeting_key is null and k.current_session_key is null
    and not exists (
        select 1 from racemap.races_needing_attention as a where a.race_id = m.race_id
    )
"""
# Why each of those holds no keys, from the last write racemap recorded for it: a restore
# (``restored``), an apply that set keys since cleared outside racemap (``cleared_by_hand``), or
# none (``never_applied``: a dry run, or no apply yet). Grouped by the run that wrote last.
# Without racemap.mapping_history (nothing ever applied) every one is never_applied.
_UNAPPLIED_WHY = f"""
with unapplied as ({_UNAPPLIED_RACES}),
last_write as (
    select distinct on (h.race_id) h.race_id, h.run_id, r.kind
    from racemap.mapping_history as h
    join racemap.mapping_runs as r on r.run_id = h.run_id
    where h.race_id in (select race_id from unapplied)
    order by h.race_id, h.changed_at desc, h.history_id desc
)
select
    case
        when w.race_id is null then 'never_applied'
        when w.kind = 'restore' then 'restored'
        else 'cleared_by_hand'
    end as why,
    w.run_id,
    count(*)::integer as races
from unapplied as u
left join last_write as w on w.race_id = u.race_id
group by 1, 2
order by 1, 2
"""
_NEVER_APPLIED = f"""
select 'never_applied' as why, null as run_id, count(*)::integer as races
from ({_UNAPPLIED_RACES}) as unapplied
having count(*) > 0
"""
WHY_WORDS = {
    "restored": "restored by run {run_id}",
    "cleared_by_hand": "cleared outside racemap after run {run_id} set them",
    "never_applied": "never applied (a dry run, or no apply yet)",
}


def _exists(conn, relation: str) -> bool:
    with conn.cursor() as cur:
        cur.execute("select to_regclass(%s)", (relation,))
        return cur.fetchone()[0] is not None


def freshness(conn, env: Environment, now: datetime | None = None) -> dict:
    """Per endpoint: the last successful fetch (live or snapshot), its age and its status; the
    windows are ``env``'s RACEMAP_FRESHNESS_WARN_DAYS / _ERROR_DAYS."""
    now = now or datetime.now(UTC)
    warn, error = env.racemap_freshness_warn_days, env.racemap_freshness_error_days
    if not _exists(conn, "raw.openf1_loads"):
        return {
            "in_season": False,
            "warn_after_days": warn,
            "error_after_days": error,
            "endpoints": {},
        }
    season = query_dicts(
        conn,
        "select min(date_start) as first, max(coalesce(date_end, date_start)) as last"
        " from raw.openf1_sessions where removed_at is null and year = %s",
        (now.year,),
    )[0]
    in_season = bool(
        season["first"] and season["first"] <= now and now <= season["last"] + _days(1)
    )
    rows = query_dicts(
        conn,
        "select endpoint,"
        " max(finished_at) filter (where status = 'ok' and url not like 'snapshot:%%')"
        "   as last_live,"
        " max(finished_at) filter (where status = 'ok') as last_ok,"
        " max(finished_at) filter (where status = 'failed') as last_failed"
        " from raw.openf1_loads group by endpoint order by endpoint",
    )
    endpoints = {}
    for row in rows:
        live = row["last_live"]
        age = (now - live).total_seconds() / 86400 if live else None
        if not in_season:
            state = "off_season"
        elif age is None or age > error:
            state = "error"
        elif age > warn:
            state = "warn"
        else:
            state = "fresh"
        endpoints[row["endpoint"]] = {
            "last_live_fetch": _iso(live),
            "last_fetch": _iso(row["last_ok"]),
            "last_failed_fetch": _iso(row["last_failed"]),
            "age_days": None if age is None else round(age, 2),
            "status": state,
        }
    return {
        "in_season": in_season,
        "season": now.year if in_season else None,
        "warn_after_days": warn,
        "error_after_days": error,
        "endpoints": endpoints,
    }


def _days(n: float):
    from datetime import timedelta

    return timedelta(days=n)


def _iso(value):
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else value


def collect(conn, env: Environment) -> dict:
    """Everything ``racemap status`` says, as a dict (``--json`` prints it)."""
    if not _exists(conn, "racemap.runs"):
        return {
            "last_run": None,
            "last_sync": None,
            "attention": [],
            "unapplied": 0,
            "unapplied_why": [],
            "race_data": [],
            "changes": None,
            "freshness": freshness(conn, env),
        }
    runs = query_dicts(
        conn,
        "select run_id, started_at, finished_at, verdict, stopped_at, error, dry_run, seasons,"
        f" attention_count, changes_count, previous_run_id from racemap.runs as r where {GONE}"
        " order by coalesce(finished_at, started_at) desc limit 1",
    )
    last = {k: _iso(v) for k, v in runs[0].items()} if runs else None
    if last and last["verdict"] != verdicts.FAILED:
        _require_built(conn)
    attention = attention_rows(conn) if _exists(conn, "racemap.races_needing_attention") else []
    changes = None
    if last and last["changes_count"] is not None:
        changes = summarise(changes_of(conn, last["run_id"]), last["previous_run_id"])
    return {
        "last_run": last,
        "last_sync": last_sync(conn),
        "attention": attention,
        **_unapplied_state(conn),
        "race_data": race_data_checks.failed_check_rows(conn),
        "changes": changes,
        "freshness": freshness(conn, env),
    }


# What status reads of the last build. dbt replaces race_openf1_mapping (and the staging view
# of the keys) by dropping the old one with what depends on it, the attention view among them,
# and makes the view again later in the build: while a run builds, or after one was killed
# there, the view is missing, and status read that as no race needing attention ("ok", exit 0).
BUILT = (
    "racemap.race_openf1_mapping",
    "racemap_staging.stg_app__race_keys",
    "racemap.races_needing_attention",
)


def _require_built(conn) -> None:
    """One line (RacemapError) when a relation of the last build is missing: a run is building
    now (it holds the run lock: wait for it), or one stopped during its build (run again)."""
    missing = [relation for relation in BUILT if not _exists(conn, relation)]
    if not missing:
        return
    from racemap.errors import RacemapError, not_as_built
    from racemap.runtime import lock_holder

    holder = lock_holder(conn)
    if holder is not None and holder[0] == "run":
        raise RacemapError(
            f"racemap {holder[1]} is rebuilding the mapping now ({missing[0]} is back when its "
            "build ends): run racemap status again when it has finished"
        )
    raise not_as_built(f'relation "{missing[0]}" does not exist')


def last_sync(conn) -> dict | None:
    """The last ``racemap sync`` recorded (``racemap.sync_runs``), or None."""
    if not _exists(conn, "racemap.sync_runs"):
        return None
    rows = query_dicts(
        conn,
        "select run_id, started_at, finished_at, verdict, stopped_at, error, sessions, pages,"
        f" attention_count from racemap.sync_runs as r where {GONE}"
        " order by coalesce(finished_at, started_at) desc limit 1",
    )
    return {k: _iso(v) for k, v in rows[0].items()} if rows else None


def unapplied_why(conn) -> list[dict]:
    """The races mapped but holding no keys, grouped by why: ``why`` (restored,
    cleared_by_hand, never_applied), the ``run_id`` that wrote them last, the count ``races``."""
    needed = (
        "racemap.race_openf1_mapping",
        "racemap_staging.stg_app__race_keys",
        "racemap.races_needing_attention",
    )
    if not all(_exists(conn, relation) for relation in needed):
        return []
    applied_ever = _exists(conn, "racemap.mapping_history")
    return query_dicts(conn, _UNAPPLIED_WHY if applied_ever else _NEVER_APPLIED)


def _unapplied_state(conn) -> dict:
    why = unapplied_why(conn)
    return {"unapplied": sum(group["races"] for group in why), "unapplied_why": why}


def _stale(state: dict) -> list[str]:
    return [n for n, e in state["freshness"]["endpoints"].items() if e["status"] == "error"]


def verdict(state: dict) -> str:
    last = state["last_run"]
    return verdicts.status_verdict(
        last and last["verdict"],
        [*state["attention"], *state["race_data"]],
        _stale(state),
        state["unapplied"],
        (state.get("last_sync") or {}).get("verdict"),
    )


def _finished(row: dict) -> str:
    """When a run or sync finished; one killed outright never did (changes.record_stage)."""
    if row["finished_at"] is None:
        return f"started {row['started_at']}, never finished"
    return f"finished {row['finished_at']}"


def lines(state: dict, db_display: str) -> tuple[list[str], list[str]]:
    """(stdout lines, stderr lines) of the text output."""
    out, err = [], []
    last = state["last_run"]
    if last is None:
        err.append(f"no racemap run recorded on {db_display} yet: run `racemap run`")
        return out, err
    out.append(
        f"last run  {last['run_id']}, {_finished(last)}: {last['verdict']}"
        + (" (dry run)" if last["dry_run"] else "")
    )
    if last["verdict"] == verdicts.FAILED:
        err.append(f"failed at {last['stopped_at'] or '?'}: {last['error'] or 'see summary.json'}")
    sync = state.get("last_sync")
    if sync:
        failed = sync["verdict"] == verdicts.FAILED
        stopped = f"{sync['stopped_at'] or '?'}: {sync['error'] or 'see its output'}"
        done = (
            f"stopped at {stopped}"
            if failed
            else f"{plural(sync['sessions'], 'session')}, {plural(sync['pages'], 'page')} rendered"
        )
        finished = f"{_finished(sync)}: {sync['verdict']}"
        out.append(f"last sync {sync['run_id']}, {finished} ({done})")
        if failed:
            err.append(f"last sync failed at {stopped}: run racemap sync again")
    changes = state["changes"]
    out.append("changes   " + describe(changes) if changes else "changes   not recorded")
    for c in (changes or {}).get("list", [])[:20]:
        out.append(
            f"  {c['kind']}: race {c['race_id'] or '-'}, meeting {c['meeting_key'] or '-'}"
            + (f", session {c['session_key']}" if c["session_key"] else "")
            + f": {c['before'] or '-'} -> {c['after'] or '-'}"
        )
    if changes and changes["total"] > 20:
        out.append(f"  and {changes['total'] - 20} more (racemap.run_changes)")
    fresh = state["freshness"]
    out.append(
        "freshness "
        + (
            f"season {fresh['season']} running: warn after {fresh['warn_after_days']:g} days, "
            f"error after {fresh['error_after_days']:g}"
            if fresh["in_season"]
            else "off-season: no window applies"
        )
    )
    for endpoint, e in fresh["endpoints"].items():
        age = "never live" if e["age_days"] is None else f"{e['age_days']:.1f} days ago"
        out.append(f"  {endpoint:<16}{e['last_live_fetch'] or '-'} ({age}) {e['status']}")
        if e["status"] == "error":
            err.append(
                f"attention: raw {endpoint} last fetched live {age}, in season: run racemap run"
            )
    for row in state["attention"]:
        err.append("attention: " + attention_line(row))
    for row in state["race_data"]:  # the last racemap sync's failed race data checks
        err.append("attention: race data: " + race_data_checks.attention_line(row))
    for group in state.get("unapplied_why", []):
        why = WHY_WORDS[group["why"]].format(run_id=group["run_id"])
        err.append(
            f"attention: {group['races']} race(s) are mapped but hold no keys ({why}): the next "
            "racemap run applies their mapping"
        )
    return out, err


def main(database_url: str | None, as_json: bool, env: Environment) -> int:
    import sys

    from racemap.db import resolve_database

    db = resolve_database(database_url)
    with db.transaction() as conn:
        state = collect(conn, env)
    result = verdict(state)
    if as_json:
        print(json.dumps({"verdict": result, "database": db.display, **state}, default=str))
    else:
        out, err = lines(state, db.display)
        for line in out:
            print(printable(line))
        for line in err:
            print(printable(line), file=sys.stderr)
    return verdicts.exit_code(result)
