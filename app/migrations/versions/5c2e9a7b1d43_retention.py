"""retention: watches by end time, pruned-row counts

Housekeeping deletes the watches that ended longest ago first (``BRIDGE_RETENTION_DAYS``): an index
on ``watches.finished_at`` finds them without reading every watch. The single ``bridge_state`` row
keeps what housekeeping removed, cumulatively, for ``mi_bridge_pruned_rows_total``, and the summed
counters of the pruned heartbeat rows of gone workers, so ``/metrics`` totals do not drop when such
a row is deleted. Both start as empty JSON objects on the existing row.

Building the index holds writes to ``watches`` for as long as it takes (seconds per million rows
on PostgreSQL).

Revision ID: 5c2e9a7b1d43
Revises: 8e4c1a9d5f27
Create Date: 2026-12-09 00:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5c2e9a7b1d43'
down_revision = '8e4c1a9d5f27'
branch_labels = None
depends_on = None

EMPTY_JSON = sa.text("'{}'")


def upgrade():
    with op.batch_alter_table('bridge_state', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('pruned_rows', sa.JSON(), server_default=EMPTY_JSON, nullable=False)
        )
        batch_op.add_column(
            sa.Column('retired_counters', sa.JSON(), server_default=EMPTY_JSON, nullable=False)
        )
    with op.batch_alter_table('watches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_watches_finished_at'), ['finished_at'], unique=False)


def downgrade():
    with op.batch_alter_table('watches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_watches_finished_at'))
    with op.batch_alter_table('bridge_state', schema=None) as batch_op:
        batch_op.drop_column('retired_counters')
        batch_op.drop_column('pruned_rows')
