"""visible trouble and alerts: what a failed poll was, short delivery errors, the alerts table

``assets`` gains the kind, HTTP status, NCP request id and start of its latest run of failed polls
(the watch JSON's ``last_error``). Deliveries and attempts keep a short human error and its full
text apart. ``bridge_state`` remembers when a rate-limit pause began. ``alerts`` holds one row per
(kind, subject) that ``bridge.alert`` reported. Every added column is nullable: no table is
rewritten.

Revision ID: 7d3f0b6c2e18
Revises: 5c2e9a7b1d43
Create Date: 2026-12-05 21:30:00.000000

"""
from alembic import op
import sqlalchemy as sa

from app.models.base import UTCDateTime

# revision identifiers, used by Alembic.
revision = '7d3f0b6c2e18'
down_revision = '5c2e9a7b1d43'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('assets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_error_kind', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('last_error_status', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('last_error_request_id', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('failing_since', UTCDateTime(), nullable=True))
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_error_detail', sa.Text(), nullable=True))
    with op.batch_alter_table('delivery_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('error_detail', sa.Text(), nullable=True))
    with op.batch_alter_table('bridge_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rate_limited_since', UTCDateTime(), nullable=True))
    op.create_table(
        'alerts',
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('subject', sa.String(length=255), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('since', UTCDateTime(), nullable=False),
        sa.Column('detail', sa.String(length=512), nullable=False),
        sa.Column('notifications', sa.Integer(), nullable=False),
        sa.Column('last_notified_at', UTCDateTime(), nullable=True),
        sa.Column('resolved_at', UTCDateTime(), nullable=True),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('kind', 'subject', name=op.f('pk_alerts')),
    )


def downgrade():
    op.drop_table('alerts')
    with op.batch_alter_table('bridge_state', schema=None) as batch_op:
        batch_op.drop_column('rate_limited_since')
    with op.batch_alter_table('delivery_attempts', schema=None) as batch_op:
        batch_op.drop_column('error_detail')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_column('last_error_detail')
    with op.batch_alter_table('assets', schema=None) as batch_op:
        batch_op.drop_column('failing_since')
        batch_op.drop_column('last_error_request_id')
        batch_op.drop_column('last_error_status')
        batch_op.drop_column('last_error_kind')
