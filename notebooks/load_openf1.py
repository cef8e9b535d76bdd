# %% [markdown]
# # Load OpenF1 meetings and sessions
#
# Fetches `/v1/meetings` and `/v1/sessions` once per season (or reads the bundled snapshot with
# `offline=True`) into `raw.openf1_meetings` / `raw.openf1_sessions`. The database comes from
# `DATABASE_URL` (the embedded one when unset): never pass credentials as parameters.

# %% tags=["parameters"]
seasons = "2023-2025"  # a year, a range or a list: "2023-2025", "2024", "2023,2025"
offline = True  # True: the bundled snapshot in data/openf1/snapshot/
refresh = False  # True: fetch settled seasons again
run_id = None  # set by racemap run, to find this load in raw.openf1_loads

# %%
from racemap.db import resolve_database
from racemap.loader import load_openf1, parse_seasons

db = resolve_database()
result = load_openf1(db, parse_seasons(seasons), offline=offline, refresh=refresh, run_id=run_id)
print(
    f"{result.rows_loaded} rows loaded, {result.rows_rejected} rejected, "
    f"{result.requests} HTTP requests"
)

# %%
import pandas as pd

loads = pd.DataFrame([vars(x) for x in result.loads])
loads.pivot_table(
    index="season", columns="endpoint", values=["rows_loaded", "rows_rejected"], aggfunc="sum"
)
