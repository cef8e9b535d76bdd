"""When a season's OpenF1 data need not be fetched again (the loader's incremental rule): its
schedule once it is over and was loaded live after it ended, its results and grids once the
correction window (``OPENF1_SETTLE_DAYS``) has passed, each by a fetch without a reject; and
the meeting-key range a season's race-weekend fetch asks for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from racemap.openf1 import endpoints
from racemap.settings import Environment

SNAPSHOT_URL_PREFIX = "snapshot:"
SCHEDULE_ENDPOINTS = endpoints.names(endpoints.SCHEDULE)  # meetings, sessions: ?year=
DEFAULT_SETTLE_DAYS = Environment.model_fields["openf1_settle_days"].default  # OPENF1_SETTLE_DAYS


def season_is_settled(conn, season: int, today: datetime | None = None) -> bool:
    """True when ``season`` need not be fetched again: it is over and was loaded after it ended.

    Over: a season before this year whose last loaded session has ended. Loaded after it ended:
    the latest fetch of each endpoint succeeded with rows, none rejected, and started in a later
    year. A reject (a fetch that removed nothing for a key it could not read has one) may be
    OpenF1's passing fault, so such a season is asked for again on the next run. The later year
    matters because legacy OpenF1 lists only sessions that have happened: a season loaded while
    it was running looks over (its last *known* session has ended) yet lacks its last races.
    A latest fetch that failed (a killed load) makes the season due again, so the next run
    completes it. Snapshot loads (``--offline``) do not count: the bundled snapshot is legacy
    and ends in November 2025. The current season, and any later one, is always fetched.
    """
    today = today or datetime.now(UTC)
    if season >= today.year:
        return False
    with conn.cursor() as cur:
        cur.execute(
            "select count(*) from ("
            "  select distinct on (endpoint)"
            "   endpoint, status, rows_loaded, rows_rejected, started_at"
            "  from raw.openf1_loads"
            "  where season = %s and url not like %s and endpoint = any(%s)"
            "  order by endpoint, load_id desc"
            ") latest where status = 'ok' and rows_loaded > 0 and rows_rejected = 0"
            " and started_at >= %s",
            (
                season,
                f"{SNAPSHOT_URL_PREFIX}%",
                list(SCHEDULE_ENDPOINTS),
                datetime(season + 1, 1, 1, tzinfo=UTC),
            ),
        )
        if cur.fetchone()[0] < len(SCHEDULE_ENDPOINTS):
            return False
        cur.execute(
            "select coalesce(max(coalesce(date_end, date_start)) < %s, false)"
            " from raw.openf1_sessions where year = %s and removed_at is null",
            (today, season),
        )
        return bool(cur.fetchone()[0])


def weekend_is_settled(
    conn,
    endpoint: str,
    season: int,
    today: datetime | None = None,
    settle_days: float = DEFAULT_SETTLE_DAYS,
) -> bool:
    """True when ``endpoint`` (session_result or starting_grid) of ``season`` need not be fetched
    again: results are corrected after the race (penalties, appeals), so they are fetched on
    every run until ``settle_days`` after the season's last session, then once more, then left.

    Settled: the season's schedule is settled (:func:`season_is_settled`) and the latest live
    fetch of ``endpoint`` for the season succeeded with rows, none rejected, and started
    ``settle_days`` or more after the end of the season's last session. Snapshot loads do not
    count.
    """
    if not season_is_settled(conn, season, today):
        return False
    with conn.cursor() as cur:
        cur.execute(
            "select max(coalesce(date_end, date_start)) from raw.openf1_sessions"
            " where year = %s and removed_at is null",
            (season,),
        )
        last_end = cur.fetchone()[0]
        if last_end is None:
            return False
        cur.execute(
            "select status = 'ok' and rows_loaded > 0 and rows_rejected = 0 and started_at >= %s"
            " from raw.openf1_loads where season = %s and endpoint = %s and url not like %s"
            " order by load_id desc limit 1",
            (
                last_end + timedelta(days=settle_days),
                season,
                endpoint,
                f"{SNAPSHOT_URL_PREFIX}%",
            ),
        )
        row = cur.fetchone()
        return bool(row and row[0])


def meeting_key_range(conn, season: int) -> dict | None:
    """OpenF1 filters for the season's meetings, ``{"meeting_key>=": lo, "meeting_key<=": hi}``,
    from the loaded meetings; None when none is loaded."""
    with conn.cursor() as cur:
        cur.execute(
            "select min(meeting_key), max(meeting_key) from raw.openf1_meetings"
            " where year = %s and removed_at is null",
            (season,),
        )
        low, high = cur.fetchone()
    return None if low is None else {"meeting_key>=": low, "meeting_key<=": high}


def session_is_settled(
    conn,
    endpoint: str,
    session_key: int,
    ends_at: datetime | None,
    today: datetime | None = None,
    settle_days: float = DEFAULT_SETTLE_DAYS,
) -> bool:
    """True when the race data of ``endpoint`` for one session need not be fetched again: as
    for results, OpenF1 corrects a session's data for a while after it ends, so it is fetched on
    every sync until ``settle_days`` after ``ends_at``, then once more, then left.

    Settled: the latest live fetch of (``endpoint``, ``session_key``) in ``raw.openf1_loads``
    succeeded with rows, none rejected, and started ``settle_days`` or more after the session
    ended. One empty answer does not settle it (an outage or OpenF1 not done yet is not a
    session without data: the next sync asks again); two in a row, both that late, do
    (OpenF1 has nothing for it: overtakes before 2024), so such an endpoint costs one request
    more, once. A failed latest fetch (a killed sync), or one with a reject, makes it due
    again. Snapshot loads do not count.
    """
    if ends_at is None:
        return False
    today = today or datetime.now(UTC)
    window_end = ends_at + timedelta(days=settle_days)
    if today < window_end:
        return False
    with conn.cursor() as cur:
        cur.execute(
            "select status = 'ok' and rows_rejected = 0 and started_at >= %s, rows_received > 0"
            " from raw.openf1_loads"
            " where endpoint = %s and session_key = %s and url not like %s"
            " order by load_id desc limit 2",
            (window_end, endpoint, session_key, f"{SNAPSHOT_URL_PREFIX}%"),
        )
        (latest_good, latest_rows), *before = cur.fetchall() or [(False, False)]
    if not latest_good:
        return False
    if latest_rows:
        return True
    return bool(before) and before[0][0] and not before[0][1]  # empty twice, both that late
