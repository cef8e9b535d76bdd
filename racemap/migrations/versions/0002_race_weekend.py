"""session_result and starting_grid: raw.openf1_session_results, raw.openf1_starting_grid.

Keyed by (session_key, driver_number); the starting grid's session_key is the qualifying session
(https://github.com/br-g/openf1/issues/356). ``duration`` and ``gap_to_leader`` are jsonb as
OpenF1 sends them (a number, a string such as "+1 LAP", null, or a Q1/Q2/Q3 array). ``source``
(live or snapshot), ``fetched_at`` (when OpenF1 last listed the row) and ``removed_at`` (when it
stopped listing it) as on the schedule tables since 0003.

Revision ID: 0002_race_weekend
Revises: 0001_initial
"""

from racemap.migrations import run_sql

revision = "0002_race_weekend"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

DDL = """
create table if not exists raw.openf1_session_results (
    session_key integer not null,
    driver_number integer not null,
    meeting_key integer,
    position integer,
    number_of_laps integer,
    points numeric,
    dnf boolean,
    dns boolean,
    dsq boolean,
    duration jsonb,
    gap_to_leader jsonb,
    record jsonb not null,
    source text not null,
    fetched_at timestamptz not null,
    removed_at timestamptz,
    loaded_at timestamptz not null default now(),
    primary key (session_key, driver_number)
);
create index if not exists openf1_session_results_meeting_idx
    on raw.openf1_session_results (meeting_key);
create table if not exists raw.openf1_starting_grid (
    session_key integer not null,
    driver_number integer not null,
    meeting_key integer,
    position integer,
    lap_duration double precision,
    record jsonb not null,
    source text not null,
    fetched_at timestamptz not null,
    removed_at timestamptz,
    loaded_at timestamptz not null default now(),
    primary key (session_key, driver_number)
);
create index if not exists openf1_starting_grid_meeting_idx
    on raw.openf1_starting_grid (meeting_key);
"""


def upgrade() -> None:
    run_sql(DDL)


def downgrade() -> None:
    raise NotImplementedError("racemap's migrations are forward-only")
