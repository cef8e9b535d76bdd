"""Where and when each raw record came from, and whether OpenF1 still lists it.

``raw.openf1_meetings`` and ``raw.openf1_sessions`` gain ``source`` (``live`` or ``snapshot``),
``fetched_at`` and ``removed_at``, as the race-weekend tables have; ``raw.openf1_loads`` gains
``rows_removed``. Rows loaded before this revision get the source of their season's latest
successful fetch in ``raw.openf1_loads`` (``live`` when none is on record, so that a snapshot
never overwrites them) and their ``loaded_at`` as ``fetched_at``.

Revision ID: 0003_raw_provenance
Revises: 0002_race_weekend
"""

from racemap.migrations import run_sql

revision = "0003_raw_provenance"
down_revision = "0002_race_weekend"
branch_labels = None
depends_on = None

SCHEDULE = """
alter table raw.openf1_{table}
    add column if not exists source text,
    add column if not exists fetched_at timestamptz,
    add column if not exists removed_at timestamptz;
with latest as (
    select distinct on (season) season,
        case when url like 'snapshot:%' then 'snapshot' else 'live' end as source
    from raw.openf1_loads
    where endpoint = '{table}' and status = 'ok'
    order by season, load_id desc
)
update raw.openf1_{table} t set
    source = coalesce((select l.source from latest l where l.season = t.year), 'live'),
    fetched_at = coalesce(t.fetched_at, t.loaded_at)
where t.source is null or t.fetched_at is null;
alter table raw.openf1_{table}
    alter column source set not null,
    alter column fetched_at set not null;
"""

CHECK = """
alter table raw.openf1_{table}
    add constraint openf1_{table}_source_check check (source in ('live', 'snapshot'));
"""


def upgrade() -> None:
    for table in ("meetings", "sessions"):
        run_sql(SCHEDULE.format(table=table))
    for table in ("meetings", "sessions", "session_results", "starting_grid"):
        run_sql(CHECK.format(table=table))
    run_sql(
        "alter table raw.openf1_loads"
        " add column if not exists rows_removed integer not null default 0"
    )


def downgrade() -> None:
    raise NotImplementedError("racemap's migrations are forward-only")
