"""racemap's tables as the release before alembic created them.

Exactly ``RAW_DDL`` (racemap/loader.py) and ``HISTORY_DDL`` (racemap/apply.py) as of commit f575d0d,
``if not exists`` throughout: on an empty database it creates them, on a database that release
made it changes nothing, and alembic then records the revision.

Revision ID: 0001_initial
Revises:
"""

from racemap.migrations import run_sql

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

RAW_DDL = """
create schema if not exists raw;
create table if not exists raw.openf1_meetings (
    meeting_key integer primary key,
    meeting_name text,
    meeting_official_name text,
    meeting_code text,
    location text,
    country_key integer,
    country_code text,
    country_name text,
    country_flag text,
    circuit_key integer,
    circuit_short_name text,
    circuit_type text,
    circuit_info_url text,
    circuit_image text,
    gmt_offset text,
    date_start timestamptz,
    date_end timestamptz,
    is_cancelled boolean,
    year integer not null,
    record jsonb not null,
    loaded_at timestamptz not null default now()
);
create table if not exists raw.openf1_sessions (
    session_key integer primary key,
    meeting_key integer not null,
    session_name text,
    session_type text,
    location text,
    country_key integer,
    country_code text,
    country_name text,
    circuit_key integer,
    circuit_short_name text,
    gmt_offset text,
    date_start timestamptz,
    date_end timestamptz,
    is_cancelled boolean,
    year integer not null,
    record jsonb not null,
    loaded_at timestamptz not null default now()
);
create index if not exists openf1_sessions_circuit_start_idx
    on raw.openf1_sessions (circuit_key, date_start);
create index if not exists openf1_sessions_meeting_idx on raw.openf1_sessions (meeting_key);
create table if not exists raw.openf1_loads (
    load_id bigserial primary key,
    run_id text,
    endpoint text not null,
    season integer not null,
    url text not null,
    status text not null,
    http_status integer,
    requests integer not null default 0,
    rows_received integer not null default 0,
    rows_loaded integer not null default 0,
    rows_rejected integer not null default 0,
    error text,
    started_at timestamptz not null,
    finished_at timestamptz not null default now()
);
create table if not exists raw.openf1_rejects (
    reject_id bigserial primary key,
    load_id bigint references raw.openf1_loads (load_id),
    endpoint text not null,
    season integer,
    reason text not null,
    payload jsonb,
    rejected_at timestamptz not null default now()
);
"""

HISTORY_DDL = """
create schema if not exists racemap;
create table if not exists racemap.mapping_runs (
    run_id text primary key,
    kind text not null check (kind in ('apply', 'restore')),
    restores_run_id text,
    allow_changes boolean not null default false,
    rows_applied integer not null default 0,
    rows_conflicting integer not null default 0,
    rows_held_back integer not null default 0,
    applied_by text not null,
    applied_at timestamptz not null default now()
);
create table if not exists racemap.mapping_history (
    history_id bigserial primary key,
    run_id text not null references racemap.mapping_runs (run_id),
    race_id text not null,
    action text not null,
    meeting_key_before integer,
    session_key_before integer,
    meeting_key_after integer,
    session_key_after integer,
    changed_at timestamptz not null default now()
);
create index if not exists mapping_history_race_idx on racemap.mapping_history (race_id);
"""


def upgrade() -> None:
    run_sql(RAW_DDL)
    run_sql(HISTORY_DDL)


def downgrade() -> None:
    raise NotImplementedError("racemap's migrations are forward-only")
