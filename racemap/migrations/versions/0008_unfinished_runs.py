"""A run's and a sync's row is written when it starts its work, unfinished (``finished_at``
null, verdict ``failed``, ``stopped_at`` the stage it is in) and completed when it ends: a run
or sync killed outright (SIGKILL, the machine or the database stopped) left no row, and
``racemap status`` showed the run before it, with its verdict, beside keys the killed run had
applied.

Revision ID: 0008_unfinished_runs
Revises: 0007_removals_skipped
"""

from racemap.migrations import run_sql

revision = "0008_unfinished_runs"
down_revision = "0007_removals_skipped"
branch_labels = None
depends_on = None

DDL = """
alter table racemap.runs alter column finished_at drop not null;
alter table racemap.runs alter column finished_at drop default;
alter table racemap.sync_runs alter column finished_at drop not null;
alter table racemap.sync_runs alter column finished_at drop default;
"""


def upgrade() -> None:
    run_sql(DDL)


def downgrade() -> None:
    raise NotImplementedError("racemap's migrations are forward-only")
