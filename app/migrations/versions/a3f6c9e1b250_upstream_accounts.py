"""upstream accounts: the health of each NCP account when several are configured

``upstream_accounts`` holds, per account fingerprint (the first 8 hex digits of the SHA-256 of its
access key, never the key), its credential health and its rate-limit pause. A bridge with a single
account keeps both in ``bridge_state`` as before, so nothing is copied: a bridge that configures
several accounts starts each at ``unknown``, and its first answers tell.

Revision ID: a3f6c9e1b250
Revises: e7c1a4d2b803
Create Date: 2026-12-06 06:10:00.000000

"""
from alembic import op
import sqlalchemy as sa

from app.models.base import UTCDateTime

# revision identifiers, used by Alembic.
revision = 'a3f6c9e1b250'
down_revision = 'e7c1a4d2b803'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'upstream_accounts',
        sa.Column('fingerprint', sa.String(length=16), nullable=False),
        sa.Column('upstream_auth', sa.String(length=16), nullable=False),
        sa.Column('upstream_auth_detail', sa.String(length=512), nullable=True),
        sa.Column('upstream_auth_changed_at', UTCDateTime(), nullable=True),
        sa.Column('rate_limited_until', UTCDateTime(), nullable=True),
        sa.Column('rate_limited_since', UTCDateTime(), nullable=True),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('fingerprint', name=op.f('pk_upstream_accounts')),
    )


def downgrade():
    op.drop_table('upstream_accounts')
