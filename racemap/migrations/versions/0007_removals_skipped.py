"""Why a fetch marked nothing removed: ``raw.openf1_loads`` gains ``removals_skipped``, null
when the fetch reconciled its (endpoint, season) or (endpoint, session), else why it did not
(an answer with a record whose key could not be read removes nothing: that record might be any
stored row).

Revision ID: 0007_removals_skipped
Revises: 0006_sync_runs
"""

from racemap.migrations import run_sql

revision = "0007_removals_skipped"
down_revision = "0006_sync_runs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql("alter table raw.openf1_loads add column if not exists removals_skipped text")


def downgrade() -> None:
    raise NotImplementedError("racemap's migrations are forward-only")
