"""The values a one-statement registration's answer is rendered from, kept with its Idempotency-Key

``idempotency_keys.answer_parts`` (JSON, NULL for rows whose ``body`` holds the answer): the
registration statement stores its key row and the answer's values in the same statement, so an
idempotent registration is one autocommitted statement (was: BEGIN, the statement, an UPDATE of
the stored answer, COMMIT).

Revision ID: d5a8c3f1e062
Revises: b8d2e5f7a914
Create Date: 2026-12-07 02:50:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = 'd5a8c3f1e062'
down_revision = 'b8d2e5f7a914'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('answer_parts', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_column('answer_parts')
