# %% [markdown]
# # Load OpenF1
#
# Fetches `/v1/meetings` and `/v1/sessions` once per season, then `/v1/session_result` and
# `/v1/starting_grid` once per season over its meeting keys (or reads the bundled snapshot with
# `offline=True`) into `raw.openf1_*`, and shows the load's rows of `raw.openf1_loads`. `racemap
# run` loads in its own process (a progress bar on a terminal) and runs this notebook with
# `load=False` and its `run_id`, as the record of that load. The database comes from `DATABASE_URL`
# (the embedded one when unset): never pass credentials as parameters.

# %% tags=["parameters"]
seasons = "2023-2025"  # a year, a range or a list: "2023-2025", "2024", "2023,2025"
offline = True  # True: the bundled snapshot in data/openf1/snapshot/
refresh = False  # True: fetch settled seasons again
run_id = None  # set by racemap run, to find this load in raw.openf1_loads
load = True  # False: show the load of run_id (racemap run made it) without loading

# %%
from racemap.db import resolve_database
from racemap.openf1.loader import AUDIT_COLUMNS, load_audit, load_openf1
from racemap.settings import parse_seasons

db = resolve_database()
if load:
    result = load_openf1(
        db, parse_seasons(seasons), offline=offline, refresh=refresh, run_id=run_id
    )
    run_id = result.run_id
audit = load_audit(db, run_id)
counted = ("rows_loaded", "rows_rejected", "rows_removed", "requests")
total = {c: sum(a[c] for a in audit) for c in counted}
print(
    f"run {run_id}: {total['rows_loaded']} rows loaded, "
    f"{total['rows_rejected']} rejected, {total['rows_removed']} marked removed, "
    f"{total['requests']} HTTP requests"
)
for fetch in audit:  # an answer with a key it could not read removes nothing: why
    if fetch["removals_skipped"]:
        print(f"{fetch['endpoint']} {fetch['season']}: {fetch['removals_skipped']}")

# %%
import pandas as pd

loads = pd.DataFrame(audit, columns=AUDIT_COLUMNS)
(
    loads.pivot_table(
        index="season",
        columns="endpoint",
        values=["rows_loaded", "rows_rejected", "rows_removed"],
        aggfunc="sum",
    )
    if len(loads)
    else "nothing fetched: every season is settled (refresh=True fetches it again)"
)
