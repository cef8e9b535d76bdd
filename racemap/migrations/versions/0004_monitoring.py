"""What each run saw and said, so the next one can tell what changed (issue 14).

``racemap.runs``: one row per run that reached the database (also failed runs): its verdict,
when it started and finished, where it stopped and why, how many races needed attention and how
many changes it found. ``racemap.run_race_states`` and ``racemap.run_openf1_states``: the
state a run left behind (each race's mapping, held keys and attention; each OpenF1 meeting's and
session's start, called-off and removed flags), the previous state of the next run's comparison.
``racemap.run_changes``: what a run found changed since the run before (racemap/changes.py).

Revision ID: 0004_monitoring
Revises: 0003_raw_provenance
"""

from racemap.migrations import run_sql

revision = "0004_monitoring"
down_revision = "0003_raw_provenance"
branch_labels = None
depends_on = None

DDL = """
create table if not exists racemap.runs (
    run_id text primary key,
    started_at timestamptz,
    finished_at timestamptz not null default now(),
    verdict text not null check (verdict in ('ok', 'attention', 'failed')),
    stopped_at text,
    error text,
    dry_run boolean not null default false,
    seasons text,
    attention_count integer not null default 0,
    changes_count integer,
    previous_run_id text
);
create index if not exists runs_finished_idx on racemap.runs (finished_at desc);
create table if not exists racemap.run_race_states (
    run_id text not null,
    race_id text not null,
    season integer,
    race_name text,
    status text,
    reason text,
    meeting_key integer,
    session_key integer,
    held_meeting_key integer,
    held_session_key integer,
    attention_kind text,
    attention_detail text,
    primary key (run_id, race_id)
);
create table if not exists racemap.run_openf1_states (
    run_id text not null,
    entity text not null check (entity in ('meeting', 'session')),
    key integer not null,
    meeting_key integer,
    season integer,
    name text,
    starts_at timestamptz,
    is_cancelled boolean not null,
    is_removed boolean not null,
    primary key (run_id, entity, key)
);
create table if not exists racemap.run_changes (
    run_id text not null,
    seq integer not null,
    kind text not null,
    race_id text,
    meeting_key integer,
    session_key integer,
    before text,
    after text,
    primary key (run_id, seq)
);
"""


def upgrade() -> None:
    run_sql(DDL)


def downgrade() -> None:
    raise NotImplementedError("racemap's migrations are forward-only")
