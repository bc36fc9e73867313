"""dashboard sessions and failed-token throttling

``dashboard_sessions``: one row per dashboard sign-in, named by the signed cookie; sign-out deletes
it, so a copied cookie stops working. ``auth_failures``: failed tokens per client address within the
current window (``app.web.throttle``). Both stay small: a sign-in deletes the sessions that ended,
and counting a new address deletes the rows of addresses quiet for 10 minutes.

Revision ID: 9b4e2d6f1a37
Revises: 7d3f0b6c2e18
Create Date: 2026-12-05 22:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

from app.models.base import UTCDateTime

# revision identifiers, used by Alembic.
revision = '9b4e2d6f1a37'
down_revision = '7d3f0b6c2e18'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'dashboard_sessions',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('token_fingerprint', sa.String(length=64), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_dashboard_sessions')),
    )
    with op.batch_alter_table('dashboard_sessions', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_dashboard_sessions_expires_at'), ['expires_at'], unique=False
        )
    op.create_table(
        'auth_failures',
        sa.Column('client', sa.String(length=64), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('first_at', UTCDateTime(), nullable=False),
        sa.Column('last_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('client', name=op.f('pk_auth_failures')),
    )
    with op.batch_alter_table('auth_failures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_auth_failures_last_at'), ['last_at'], unique=False)


def downgrade():
    with op.batch_alter_table('auth_failures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_auth_failures_last_at'))
    op.drop_table('auth_failures')
    with op.batch_alter_table('dashboard_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dashboard_sessions_expires_at'))
    op.drop_table('dashboard_sessions')
