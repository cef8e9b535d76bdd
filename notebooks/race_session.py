# %% [markdown]
# # A race: its OpenF1 sessions and race data
#
# Looks up the race's `openf1_meeting_key` and `openf1_session_key`, then the meeting and the
# session of `session_kind` (the Grand Prix race by default): with `offline=True`, as `racemap
# run` loaded them into the database (any season it loaded, live or from the bundled snapshot);
# else from the OpenF1 API. A race without keys, or a weekend without that session, stops here
# with `not mapped: <reason>`. Then the race data `racemap sync` loaded for the session, from the
# marts under the application's ids: the result, lap times, tyre stints, pit stops, positions
# and weather (racemap/reporting/race_page.py).

# %% tags=["parameters"]
race_id = "1125"  # the application's race id (Chinese GP 2024: a sprint weekend)
offline = True  # True: as racemap run loaded them; False: the OpenF1 API ($OPENF1_URL)
session_kind = "race"  # race, sprint or qualifying: the session of the race data below
data_version = None  # set by racemap sync: the version of the race data this page shows
drivers = []  # acronyms or car numbers (["VER", "NOR"], [1, 4], "VER,NOR"): only these in charts
races = {}  # the races table when not public.races: races_schema, races_table, race_id_column

# %%
from racemap.db import resolve_database
from racemap.mapping.lookup import session_kind as known_kind
from racemap.mapping.race_session import race_session
from racemap.settings import RacesTable

session_kind = known_kind(session_kind)  # "Sprint", "sprint qualifying" as typed
db = resolve_database()
with db.transaction() as conn:
    found = race_session(
        conn, race_id, offline=offline, kind=session_kind, races=RacesTable.from_vars(races)
    )
print(
    f"race {found.keys.race_id}: meeting_key {found.keys.meeting_key}, "
    f"session_key {found.keys.session_key} ({found.source})"
    + ("" if session_kind == "race" else f"; {session_kind}: {found.session['session_key']}")
)

# %%
import pandas as pd

from racemap.reporting.report_data import table

fields = [
    "meeting_name",
    "circuit_short_name",
    "country_name",
    "date_start",
    "session_name",
    "session_type",
    "date_end",
]
table(
    pd.DataFrame(
        {
            "meeting": {f: found.meeting.get(f) for f in fields},
            f"{session_kind.replace('_', ' ')} session": {f: found.session.get(f) for f in fields},
        }
    )
    .dropna(how="all")
    .rename_axis("field")
    .reset_index()
)

# %%
from racemap.reporting import race_page

with db.transaction() as conn:
    laps = race_page.read(conn, "laps", race_id, session_kind)
    stints = race_page.read(conn, "stints", race_id, session_kind)
    pit_stops = race_page.read(conn, "pit_stops", race_id, session_kind)
    positions = race_page.read(conn, "positions", race_id, session_kind)
    weather = race_page.read(conn, "weather", race_id, session_kind)
    result = race_page.read(conn, "classification", race_id, session_kind)
cars = pd.concat([f["driver_number"] for f in (laps, stints, pit_stops, positions)]).nunique()
sync = race_page.sync_command(race_id, session_kind)
drivers = race_page.choose(drivers, laps, stints, pit_stops, positions, result, sync=sync)
print(
    f"{session_kind}: {cars} drivers, {len(laps)} laps, "
    f"{len(stints)} stints, {len(pit_stops)} pit stops, {len(positions)} position changes, "
    f"{len(weather)} weather readings"
    + ("" if cars or len(weather) else f" (no race data: run {sync})")
)

# %% [markdown]
# ## Result

# %%
race_page.classification_table(result)

# %% [markdown]
# ## Lap times by driver

# %%
race_page.chart(
    race_page.only(laps, drivers), race_page.lap_time_chart, "lap times by driver", "lap times"
)

# %% [markdown]
# ## Tyre stints

# %%
race_page.chart(
    race_page.only(stints, drivers),
    race_page.stint_chart,
    "tyre stints",
    "tyre stints",
    positions=race_page.only(positions, drivers),
    classification=race_page.only(result, drivers),
)

# %% [markdown]
# ## Pit stops

# %%
race_page.pit_stop_table(pit_stops)

# %% [markdown]
# ## Positions over the session

# %%
race_page.chart(
    race_page.only(positions, drivers),
    race_page.position_chart,
    "positions over the session",
    "positions",
)

# %% [markdown]
# ## Weather

# %%
race_page.chart(weather, race_page.weather_chart, "weather", "weather readings")
