"""index open tickets by due time (partial); drop the (status, due_at) index it replaces

The daily ladder and the unit lists select ``status <> 'closed'``, which a b-tree leading
with ``status`` cannot serve as a range: every daily run read the whole history. A partial
index over the open tickets only is small (most tickets are closed), serves those queries
and costs little on import.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 08:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

OPEN = sa.text("status <> 'closed'")


def upgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_status_due')
        batch_op.create_index(
            'ix_tickets_open_due',
            ['due_at'],
            unique=False,
            postgresql_where=OPEN,
            sqlite_where=OPEN,
        )


def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_open_due')
        batch_op.create_index('ix_tickets_status_due', ['status', 'due_at'], unique=False)
