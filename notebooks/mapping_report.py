# %% [markdown]
# # racemap mapping report
#
# How the application's races map to OpenF1 after this run: first the races that need a person, then
# coverage by season, the unmapped races by reason, the key updates of this run and the conflicts;
# last, the race pages `racemap sync` rendered.
# `racemap run` executes this notebook with papermill after every run; the database comes from
# `DATABASE_URL` (the embedded one when unset): never pass credentials as parameters.

# %% tags=["parameters"]
reports_dir = None  # the run's reports (default: the project's reports/<database>/)
run_id = None  # set by racemap run
coverage_threshold = 1.0  # the coverage_threshold var: least share mapped per season

# %%
from IPython.display import Image, Markdown, display

from racemap.db import resolve_database
from racemap.reporting import report_data

reports_dir = report_data.find_reports(reports_dir)  # from any working directory
conn = resolve_database().connect()
summary = report_data.run_summary(reports_dir)
display(Markdown(f"**Run** `{run_id or summary.get('run_id', '-')}`"))
report_data.summary_table(summary)

# %% [markdown]
# ## Needs attention
#
# Each race that needs a person, with what to do (`racemap.races_needing_attention`): unmapped in
# the past of a loaded season (but for called-off races and reviewed skips), an unusable row, or
# keys that are not its mapping.

# %%
attention = report_data.needing_attention(conn)
display(*report_data.line_and_table(report_data.verdict_line(summary, attention), attention))

# %% [markdown]
# ## Since the last run
#
# What changed since the previous run on this database (`changes.csv`, kept in
# `racemap.run_changes`): races newly mapped or unmapped, newly needing attention or no longer, keys
# set, changed or cleared, races added to or removed from the races table; OpenF1 meetings and
# sessions added, removed, called off or rescheduled (`before` and `after`). Then the freshness of
# the raw OpenF1 data.

# %%
since_line, since = report_data.changes_since_last_run(reports_dir)
display(*report_data.line_and_table(since_line, since))

# %% [markdown]
# ## Coverage by season
#
# Of the races OpenF1 should know (the season's OpenF1 data was loaded; the race is in the past or
# mapped; not called off; not accepted by a reviewed skip override; circuits missing from the
# circuit map included), the share that is mapped (`racemap.mapping_coverage`). The dashed line is
# the threshold Great Expectations checks.

# %%
coverage = report_data.coverage_by_season(conn)
chart = report_data.coverage_chart(coverage, coverage_threshold)
display(Image(report_data.png(chart), metadata={"alt": "Mapping coverage by season"}))
report_data.table(coverage, {"coverage": "{:.1%}"})

# %% [markdown]
# ## Verified by results
#
# The second signal: each mapped race's results in the application against OpenF1's
# `session_result` of its Race session (`race_openf1_mapping.results_check`): `agree` (every
# position classified on both sides holds the same car), `disagree` (a race needing attention:
# the mapping or the application's results are wrong) or `no_results` (one side has none yet).

# %%
display(report_data.table(report_data.verified_by_results(conn)))
review = report_data.results_to_review(conn)
display(report_data.table_or_note(review, "_Every mapped race's results agree with OpenF1's._"))

# %% [markdown]
# ## Unmapped races by reason

# %%
report_data.table(report_data.unmapped_by_reason(conn))

# %% [markdown]
# Each unmapped race of a season OpenF1 covers:

# %%
unmapped = report_data.unmapped_in_coverage(conn)
display(report_data.table_or_note(unmapped, "_Every race of the seasons OpenF1 covers is mapped._"))

# %% [markdown]
# ## Updates of this run
#
# The key changes this run computed (`mapping_updates.csv`), each with its status: `applied`,
# `conflict`, `held_back`, `unchanged` or `dry_run`.

# %%
updates = report_data.run_updates(reports_dir)
if updates.empty:
    display(Markdown("_No updates: the races table already holds every mapped key._"))
else:
    display(updates.groupby("status").size().rename("updates").to_frame())
    display(report_data.table(updates))

# %% [markdown]
# Races mapped but holding no keys, by why: restored by a run (`racemap restore`), cleared outside
# racemap after a run set them, or never applied (a dry run).

# %%
display(*report_data.line_and_table(*report_data.mapped_without_keys(conn)))

# %% [markdown]
# ## Conflicts
#
# Updates not applied because another race holds the key, and races the mapping leaves unmapped for
# the same reason.

# %%
conflicts = report_data.update_conflicts(updates)
held = report_data.conflicts_in_mapping(conn)
conn.close()
if conflicts.empty and held.empty:
    display(Markdown("_No conflicts._"))
else:
    display(report_data.table(conflicts))
    display(report_data.table(held))

# %% [markdown]
# ## Race pages
#
# The race data of each synced session under the application's ids, one page a session
# (`racemap sync` renders them; a run keeps them): their list is `race_pages.html`.

# %% tags=["race-pages"]
display(Markdown(report_data.race_pages_line(reports_dir)))  # a sync rewrites this cell's line
