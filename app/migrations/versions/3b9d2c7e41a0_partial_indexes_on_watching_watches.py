"""partial indexes on watching watches

The poller looks up a batch's watching watches by asset, and the deadline sweep looks for watching
watches past their deadline, in every tick. With the state as a literal in those queries, these small
partial indexes serve them even in a prepared statement's generic plan (PostgreSQL); the plan it chose
before (a bitmap AND with the whole ``ix_watches_state_id``) grew with every watch ever made.

Revision ID: 3b9d2c7e41a0
Revises: f96781f4804e
Create Date: 2026-11-26 00:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '3b9d2c7e41a0'
down_revision = 'f96781f4804e'
branch_labels = None
depends_on = None

WATCHING = sa.text("state = 'watching'")


def upgrade():
    with op.batch_alter_table('watches', schema=None) as batch_op:
        batch_op.create_index(
            'ix_watches_watching_asset_pk', ['asset_pk'], unique=False,
            postgresql_where=WATCHING, sqlite_where=WATCHING,
        )
        batch_op.create_index(
            'ix_watches_watching_deadline_at', ['deadline_at'], unique=False,
            postgresql_where=WATCHING, sqlite_where=WATCHING,
        )


def downgrade():
    with op.batch_alter_table('watches', schema=None) as batch_op:
        batch_op.drop_index('ix_watches_watching_deadline_at')
        batch_op.drop_index('ix_watches_watching_asset_pk')
