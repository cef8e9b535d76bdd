"""Write the project's notebooks from the cell sources below (run once after editing them).

The notebooks are stored without outputs; ``parameters`` cells carry papermill's tag.
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
KERNEL = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def notebook(cells):
    nb = new_notebook(cells=cells, metadata=KERNEL)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    return nb


def params(source):
    cell = new_code_cell(source)
    cell.metadata["tags"] = ["parameters"]
    return cell


LOAD = notebook(
    [
        new_markdown_cell(
            "# Load OpenF1\n\n"
            "Fetches `/v1/meetings` and `/v1/sessions` once per season, then `/v1/session_result` "
            "and `/v1/starting_grid` once per season over its meeting keys (or reads the bundled "
            "snapshot with `offline=True`) into `raw.openf1_*`, and shows the load's rows of "
            "`raw.openf1_loads`. `racemap run` loads in its own process (a progress bar on a "
            "terminal) and runs this notebook with `load=False` and its `run_id`, as the record "
            "of that load. The database comes from `DATABASE_URL` (the embedded one when unset): "
            "never pass credentials as parameters."
        ),
        params(
            'seasons = "2023-2025"  # a year, a range or a list: "2023-2025", "2024", "2023,2025"\n'
            "offline = True  # True: the bundled snapshot in data/openf1/snapshot/\n"
            "refresh = False  # True: fetch settled seasons again\n"
            "run_id = None  # set by racemap run, to find this load in raw.openf1_loads\n"
            "load = True  # False: show the load of run_id (racemap run made it) without loading"
        ),
        new_code_cell(
            "from racemap.db import resolve_database\n"
            "from racemap.loader import AUDIT_COLUMNS, load_audit, load_openf1, parse_seasons\n\n"
            "db = resolve_database()\n"
            "if load:\n"
            "    result = load_openf1(\n"
            "        db, parse_seasons(seasons), offline=offline, refresh=refresh, run_id=run_id\n"
            "    )\n"
            "    run_id = result.run_id\n"
            "audit = load_audit(db, run_id)\n"
            'counted = ("rows_loaded", "rows_rejected", "rows_removed", "requests")\n'
            "total = {c: sum(a[c] for a in audit) for c in counted}\n"
            "print(\n"
            "    f\"run {run_id}: {total['rows_loaded']} rows loaded, \"\n"
            "    f\"{total['rows_rejected']} rejected, {total['rows_removed']} marked removed, \"\n"
            "    f\"{total['requests']} HTTP requests\"\n"
            ")"
        ),
        new_code_cell(
            "import pandas as pd\n\n"
            "loads = pd.DataFrame(audit, columns=AUDIT_COLUMNS)\n"
            "(\n"
            "    loads.pivot_table(\n"
            '        index="season",\n'
            '        columns="endpoint",\n'
            '        values=["rows_loaded", "rows_rejected", "rows_removed"],\n'
            '        aggfunc="sum",\n'
            "    )\n"
            "    if len(loads)\n"
            '    else "nothing fetched: every season is settled (refresh=True fetches it again)"\n'
            ")"
        ),
    ]
)

RACE_SESSION = notebook(
    [
        new_markdown_cell(
            "# From a race to its OpenF1 meeting and race session\n\n"
            "Looks up the race's `openf1_meeting_key` and `openf1_session_key`, then fetches the "
            "meeting and the Grand Prix race session from OpenF1 (or the bundled snapshot with "
            "`offline=True`). A race without keys stops here with `not mapped: <reason>`."
        ),
        params(
            'race_id = "1125"  # the application\'s race id (Chinese GP 2024: a sprint weekend)\n'
            "offline = True  # True: the bundled snapshot; False: the OpenF1 API ($OPENF1_URL)"
        ),
        new_code_cell(
            "from racemap.db import resolve_database\n"
            "from racemap.race_session import race_session\n\n"
            "db = resolve_database()\n"
            "with db.transaction() as conn:\n"
            "    found = race_session(conn, race_id, offline=offline)\n"
            "print(\n"
            '    f"race {found.keys.race_id}: meeting_key {found.keys.meeting_key}, "\n'
            '    f"session_key {found.keys.session_key} ({found.source})"\n'
            ")"
        ),
        new_code_cell(
            "import pandas as pd\n\n"
            "fields = [\n"
            '    "meeting_name",\n'
            '    "circuit_short_name",\n'
            '    "country_name",\n'
            '    "date_start",\n'
            '    "session_name",\n'
            '    "session_type",\n'
            '    "date_end",\n'
            "]\n"
            "pd.DataFrame(\n"
            "    {\n"
            '        "meeting": {f: found.meeting.get(f) for f in fields},\n'
            '        "race session": {f: found.session.get(f) for f in fields},\n'
            "    }\n"
            ').dropna(how="all")'
        ),
    ]
)


if __name__ == "__main__":
    NOTEBOOKS.mkdir(exist_ok=True)
    nbformat.write(LOAD, NOTEBOOKS / "load_openf1.ipynb")
    nbformat.write(RACE_SESSION, NOTEBOOKS / "race_session.ipynb")
