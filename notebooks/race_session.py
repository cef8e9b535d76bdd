# %% [markdown]
# # From a race to its OpenF1 meeting and race session
#
# Looks up the race's `openf1_meeting_key` and `openf1_session_key`, then fetches the meeting and
# the Grand Prix race session from OpenF1 (or the bundled snapshot with `offline=True`). A race
# without keys stops here with `not mapped: <reason>`.

# %% tags=["parameters"]
race_id = "1125"  # the application's race id (Chinese GP 2024: a sprint weekend)
offline = True  # True: the bundled snapshot; False: the OpenF1 API ($OPENF1_URL)

# %%
from racemap.db import resolve_database
from racemap.mapping.race_session import race_session

db = resolve_database()
with db.transaction() as conn:
    found = race_session(conn, race_id, offline=offline)
print(
    f"race {found.keys.race_id}: meeting_key {found.keys.meeting_key}, "
    f"session_key {found.keys.session_key} ({found.source})"
)

# %%
import pandas as pd

fields = [
    "meeting_name",
    "circuit_short_name",
    "country_name",
    "date_start",
    "session_name",
    "session_type",
    "date_end",
]
pd.DataFrame(
    {
        "meeting": {f: found.meeting.get(f) for f in fields},
        "race session": {f: found.session.get(f) for f in fields},
    }
).dropna(how="all")
