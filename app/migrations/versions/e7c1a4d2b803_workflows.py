"""Media Intelligence workflows: the workflows table, a watch's stage, and analysis.stalled

A ``workflows`` row holds what a registration asked the bridge to start (import, analyse,
summarise) and the step it is at. ``watches.asset_id`` becomes nullable: an import gives the asset
its id only later. ``stage``, ``polls_from``, ``stalled_after_seconds`` and ``stalled_due_at`` are
new, all nullable: existing watches need none of them.

Revision ID: e7c1a4d2b803
Revises: d5b9f3a20c76
Create Date: 2026-12-06 04:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

from app.models.base import UTCDateTime

# revision identifiers, used by Alembic.
revision = 'e7c1a4d2b803'
down_revision = 'd5b9f3a20c76'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'workflows',
        sa.Column('watch_id', sa.String(length=32), nullable=False),
        sa.Column('step', sa.String(length=24), nullable=False),
        sa.Column('import_bucket', sa.String(length=255), nullable=True),
        sa.Column('import_key', sa.Text(), nullable=True),
        sa.Column('analyze_options', sa.JSON(), nullable=True),
        sa.Column('summarize_options', sa.JSON(), nullable=True),
        sa.Column('next_at', UTCDateTime(), nullable=True),
        sa.Column('interval', sa.Double(), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.String(length=512), nullable=True),
        sa.Column('lease_owner', sa.String(length=64), nullable=True),
        sa.Column('lease_expires_at', UTCDateTime(), nullable=True),
        sa.Column('calling_since', UTCDateTime(), nullable=True),
        sa.Column('imported_asset_id', sa.String(length=128), nullable=True),
        sa.Column('import_status', sa.String(length=32), nullable=True),
        sa.Column('import_message', sa.Text(), nullable=True),
        sa.Column('import_metadata', sa.JSON(), nullable=True),
        sa.Column('summary_status', sa.String(length=32), nullable=True),
        sa.Column('summary_message', sa.Text(), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['watch_id'], ['watches.id'],
                                name=op.f('fk_workflows_watch_id_watches'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('watch_id', name=op.f('pk_workflows')),
    )
    op.create_index('ix_workflows_next_at', 'workflows', ['next_at'], unique=False)
    with op.batch_alter_table('watches', schema=None) as batch_op:
        batch_op.alter_column('asset_id', existing_type=sa.String(length=128), nullable=True)
        batch_op.add_column(sa.Column('stage', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('polls_from', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('stalled_after_seconds', sa.Double(), nullable=True))
        batch_op.add_column(sa.Column('stalled_due_at', UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_watches_stalled_due_at'), ['stalled_due_at'],
                              unique=False)


def downgrade():
    # Watches still waiting for an import have no asset id, which 0.1 cannot keep: they get ''.
    op.execute("UPDATE watches SET asset_id = '' WHERE asset_id IS NULL")
    with op.batch_alter_table('watches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_watches_stalled_due_at'))
        for column in ('stalled_due_at', 'stalled_after_seconds', 'polls_from', 'stage'):
            batch_op.drop_column(column)
        batch_op.alter_column('asset_id', existing_type=sa.String(length=128), nullable=False)
    op.drop_index('ix_workflows_next_at', table_name='workflows')
    op.drop_table('workflows')
