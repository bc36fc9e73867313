"""64-bit keys for the tables that grow with use

Events, deliveries, delivery attempts, status history and assets get a row for every observed
change, notification, attempt and watched asset, for as long as the bridge runs: on PostgreSQL their
SERIAL keys (INTEGER, and sequences AS integer) would stop at 2^31 - 1. The keys, the columns that
refer to them and their sequences become BIGINT; rows keep their values.

SQLite is left alone: an INTEGER PRIMARY KEY is already the 64-bit rowid, and rebuilding those tables
would change nothing.

On PostgreSQL each ALTER rewrites its table under an exclusive lock: on a large database this
release takes a while, and nothing else writes meanwhile.

Revision ID: 8e4c1a9d5f27
Revises: 3b9d2c7e41a0
Create Date: 2026-12-08 00:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8e4c1a9d5f27'
down_revision = '3b9d2c7e41a0'
branch_labels = None
depends_on = None

#: (table, column, nullable) of every key and every column referring to one.
COLUMNS = (
    ('assets', 'pk', False),
    ('watches', 'asset_pk', True),
    ('status_history', 'pk', False),
    ('events', 'seq', False),
    ('deliveries', 'seq', False),
    ('delivery_attempts', 'pk', False),
    ('delivery_attempts', 'delivery_seq', False),
)
#: (table, column) of the keys that own a sequence.
SERIALS = (
    ('assets', 'pk'),
    ('status_history', 'pk'),
    ('events', 'seq'),
    ('deliveries', 'seq'),
    ('delivery_attempts', 'pk'),
)


def _on_postgresql():
    return op.get_context().dialect.name == 'postgresql'


def _alter_sequence(table, column, type_name):
    # A SERIAL's sequence has a type of its own (and its maximum with it); a DO block finds its
    # name, so this works in offline (--sql) mode too.
    op.execute(
        "DO $$ BEGIN EXECUTE format('ALTER SEQUENCE %s AS " + type_name + "', "
        f"pg_get_serial_sequence('{table}', '{column}')); END $$"
    )


def upgrade():
    if not _on_postgresql():
        return
    for table, column, nullable in COLUMNS:
        op.alter_column(
            table, column, type_=sa.BigInteger(), existing_type=sa.Integer(),
            existing_nullable=nullable,
        )
    for table, column in SERIALS:
        _alter_sequence(table, column, 'bigint')


def downgrade():
    # Fails, as it should, once a sequence or a key has gone past 2^31 - 1.
    if not _on_postgresql():
        return
    for table, column in SERIALS:
        _alter_sequence(table, column, 'integer')
    for table, column, nullable in reversed(COLUMNS):
        op.alter_column(
            table, column, type_=sa.Integer(), existing_type=sa.BigInteger(),
            existing_nullable=nullable,
        )
