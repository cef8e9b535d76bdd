"""What each ``racemap sync`` said (``racemap run --race-data``'s too), as ``racemap.runs``
records the runs: ``racemap.sync_runs``, one row per sync that reached its database (failed and
interrupted ones too): its verdict, when it started and finished, the stage it stopped at and
why, and how many sessions it synced and pages it rendered. ``racemap status`` shows the last.

Revision ID: 0006_sync_runs
Revises: 0005_race_data
"""

from racemap.migrations import run_sql

revision = "0006_sync_runs"
down_revision = "0005_race_data"
branch_labels = None
depends_on = None

DDL = """
create table if not exists racemap.sync_runs (
    run_id text primary key,
    started_at timestamptz not null,
    finished_at timestamptz not null default now(),
    verdict text not null check (verdict in ('ok', 'attention', 'failed')),
    stopped_at text,
    error text,
    sessions integer,
    pages integer,
    attention_count integer not null default 0
);
create index if not exists sync_runs_finished_idx on racemap.sync_runs (finished_at desc);
"""


def upgrade() -> None:
    run_sql(DDL)


def downgrade() -> None:
    raise NotImplementedError("racemap's migrations are forward-only")
