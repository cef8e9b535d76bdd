"""The race data of ``racemap sync``: one raw table per OpenF1 endpoint fetched per session.

``raw.openf1_drivers``, ``_laps``, ``_stints``, ``_pit``, ``_position``, ``_weather``,
``_race_control``, ``_intervals``, ``_overtakes`` (the contract of the race data marts), and
``raw.openf1_car_data`` / ``raw.openf1_location`` (fetched only when asked for, session by
session). Each has its typed columns (every documented field; keys not null, first), the whole
record as jsonb, ``source`` (live or snapshot), ``fetched_at``, ``removed_at``, ``loaded_at``
and an index on ``meeting_key``. ``raw.openf1_loads`` gains ``session_key`` (null for the
season loads of the schedule and the results) and an index for the settled check of a session.

Written out here rather than generated from the registry (racemap/openf1/endpoints.py): a
migration is a record of what the schema was, and must not change when the registry does.

Revision ID: 0005_race_data
Revises: 0004_monitoring
"""

from racemap.migrations import run_sql

revision = "0005_race_data"
down_revision = "0004_monitoring"
branch_labels = None
depends_on = None

PROVENANCE = """
    record jsonb not null,
    source text not null check (source in ('live', 'snapshot')),
    fetched_at timestamptz not null,
    removed_at timestamptz,
    loaded_at timestamptz not null default now()"""

TABLES = {
    "drivers": (
        """
    session_key integer not null,
    driver_number integer not null,
    meeting_key integer,
    broadcast_name text,
    full_name text,
    name_acronym text,
    team_name text,
    team_colour text,
    first_name text,
    last_name text,
    headshot_url text,
    country_code text,""",
        "session_key, driver_number",
    ),
    "laps": (
        """
    session_key integer not null,
    driver_number integer not null,
    lap_number integer not null,
    meeting_key integer,
    date_start timestamptz,
    lap_duration double precision,
    duration_sector_1 double precision,
    duration_sector_2 double precision,
    duration_sector_3 double precision,
    i1_speed double precision,
    i2_speed double precision,
    st_speed double precision,
    is_pit_out_lap boolean,
    segments_sector_1 jsonb,
    segments_sector_2 jsonb,
    segments_sector_3 jsonb,""",
        "session_key, driver_number, lap_number",
    ),
    "stints": (
        """
    session_key integer not null,
    driver_number integer not null,
    stint_number integer not null,
    meeting_key integer,
    compound text,
    lap_start integer,
    lap_end integer,
    tyre_age_at_start integer,""",
        "session_key, driver_number, stint_number",
    ),
    "pit": (
        """
    session_key integer not null,
    driver_number integer not null,
    date timestamptz not null,
    meeting_key integer,
    lap_number integer,
    pit_duration double precision,
    stop_duration double precision,
    lane_duration double precision,""",
        "session_key, driver_number, date",
    ),
    "position": (
        """
    session_key integer not null,
    driver_number integer not null,
    date timestamptz not null,
    meeting_key integer,
    position integer,""",
        "session_key, driver_number, date",
    ),
    "weather": (
        """
    session_key integer not null,
    date timestamptz not null,
    meeting_key integer,
    air_temperature double precision,
    track_temperature double precision,
    humidity double precision,
    pressure double precision,
    rainfall double precision,
    wind_speed double precision,
    wind_direction integer,""",
        "session_key, date",
    ),
    "race_control": (
        """
    session_key integer not null,
    date timestamptz not null,
    category text not null,
    message text not null,
    meeting_key integer,
    flag text,
    scope text,
    sector integer,
    driver_number integer,
    lap_number integer,
    qualifying_phase integer,""",
        "session_key, date, category, message",
    ),
    "intervals": (
        """
    session_key integer not null,
    driver_number integer not null,
    date timestamptz not null,
    meeting_key integer,
    gap_to_leader jsonb,
    "interval" jsonb,""",
        "session_key, driver_number, date",
    ),
    "overtakes": (
        """
    session_key integer not null,
    overtaking_driver_number integer not null,
    overtaken_driver_number integer not null,
    date timestamptz not null,
    meeting_key integer,
    position integer,""",
        "session_key, overtaking_driver_number, overtaken_driver_number, date",
    ),
    "car_data": (
        """
    session_key integer not null,
    driver_number integer not null,
    date timestamptz not null,
    meeting_key integer,
    brake integer,
    drs integer,
    n_gear integer,
    rpm integer,
    speed integer,
    throttle integer,""",
        "session_key, driver_number, date",
    ),
    "location": (
        """
    session_key integer not null,
    driver_number integer not null,
    date timestamptz not null,
    meeting_key integer,
    x integer,
    y integer,
    z integer,""",
        "session_key, driver_number, date",
    ),
}

TABLE = """
create table if not exists raw.openf1_{name} ({columns}{provenance},
    primary key ({keys})
);
create index if not exists openf1_{name}_meeting_idx on raw.openf1_{name} (meeting_key);
"""

LOADS = """
alter table raw.openf1_loads add column if not exists session_key integer;
create index if not exists openf1_loads_session_idx
    on raw.openf1_loads (endpoint, session_key, load_id) where session_key is not null;
"""


def upgrade() -> None:
    for name, (columns, keys) in TABLES.items():
        run_sql(TABLE.format(name=name, columns=columns, provenance=PROVENANCE, keys=keys))
    run_sql(LOADS)


def downgrade() -> None:
    raise NotImplementedError("racemap's migrations are forward-only")
