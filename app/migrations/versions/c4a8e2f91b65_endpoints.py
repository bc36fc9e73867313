"""endpoints: named targets shared by watches, and delivery lanes

``endpoints`` holds the shared destinations; ``targets.endpoint_id`` points a watch's target at one.
``deliveries.lane`` is the ordering lane (the endpoint for an endpoint's target, else the target):
every existing delivery's lane is its target, so existing targets keep their order and keep working
unchanged.

Revision ID: c4a8e2f91b65
Revises: 9b4e2d6f1a37
Create Date: 2026-12-06 01:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

from app.models.base import UTCDateTime

# revision identifiers, used by Alembic.
revision = 'c4a8e2f91b65'
down_revision = '9b4e2d6f1a37'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'endpoints',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=63), nullable=False),
        sa.Column('type', sa.String(length=16), nullable=False),
        sa.Column('url', sa.Text(), nullable=True),
        sa.Column('channel', sa.String(length=255), nullable=True),
        sa.Column('description', sa.String(length=500), nullable=True),
        sa.Column('secret', sa.String(length=128), nullable=True),
        sa.Column('previous_secret', sa.String(length=128), nullable=True),
        sa.Column('previous_secret_until', UTCDateTime(), nullable=True),
        sa.Column('rate_limit_per_second', sa.Double(), nullable=True),
        sa.Column('next_send_at', UTCDateTime(), nullable=True),
        sa.Column('disabled', sa.Boolean(), nullable=False),
        sa.Column('disabled_reason', sa.String(length=255), nullable=True),
        sa.Column('disabled_at', UTCDateTime(), nullable=True),
        sa.Column('last_success_at', UTCDateTime(), nullable=True),
        sa.Column('last_failure_at', UTCDateTime(), nullable=True),
        sa.Column('failing_since', UTCDateTime(), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_endpoints')),
        sa.UniqueConstraint('name', name=op.f('uq_endpoints_name')),
    )
    with op.batch_alter_table('targets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('endpoint_id', sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_targets_endpoint_id'), ['endpoint_id'], unique=False)
        batch_op.create_foreign_key(
            batch_op.f('fk_targets_endpoint_id_endpoints'), 'endpoints', ['endpoint_id'], ['id']
        )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lane', sa.String(length=32), nullable=True))
    op.execute("UPDATE deliveries SET lane = target_id")
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.alter_column('lane', existing_type=sa.String(length=32), nullable=False)
        batch_op.create_index('ix_deliveries_lane_seq', ['lane', 'seq'], unique=False)


def downgrade():
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_lane_seq')
        batch_op.drop_column('lane')
    with op.batch_alter_table('targets', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_targets_endpoint_id_endpoints'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_targets_endpoint_id'))
        batch_op.drop_column('endpoint_id')
    op.drop_table('endpoints')
