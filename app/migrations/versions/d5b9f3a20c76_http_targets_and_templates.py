"""http targets and message templates: request and template columns on targets and endpoints

``method``, ``headers`` and ``body`` describe an ``http`` target's request (its body and header
values are templates); ``template`` and ``language`` are for Slack message templates and the
language of default messages. All are nullable: existing targets and endpoints need none of them.

Revision ID: d5b9f3a20c76
Revises: c4a8e2f91b65
Create Date: 2026-12-06 02:30:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = 'd5b9f3a20c76'
down_revision = 'c4a8e2f91b65'
branch_labels = None
depends_on = None

TABLES = ('targets', 'endpoints')


def upgrade():
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('method', sa.String(length=8), nullable=True))
            batch_op.add_column(sa.Column('headers', sa.JSON(), nullable=True))
            batch_op.add_column(sa.Column('body', sa.Text(), nullable=True))
            batch_op.add_column(sa.Column('template', sa.Text(), nullable=True))
            batch_op.add_column(sa.Column('language', sa.String(length=8), nullable=True))


def downgrade():
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in ('language', 'template', 'body', 'headers', 'method'):
                batch_op.drop_column(column)
