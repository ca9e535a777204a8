"""the supervision clock: an append-only event log per item, the effective clock
materialised on tickets (base deadline kept), and a round per escalation ladder

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 15:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

ITEM_KINDS = ('ticket', 'plan_task', 'policy')


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
    op.create_table(
        'clock_events',
        sa.Column('id', big_id, autoincrement=True, nullable=False),
        sa.Column('item_kind', sa.Enum(*ITEM_KINDS, name='itemkind', native_enum=False,
                                       create_constraint=True, length=24), nullable=False),
        sa.Column('item_id', sa.BigInteger(), nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('actor', sa.String(length=200), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('supersedes', sa.JSON(), nullable=False),
        sa.Column('origin', sa.String(length=32), nullable=False),
        sa.Column('origin_ref', sa.String(length=500), nullable=True),
        sa.Column('recorded_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_clock_events')),
        sa.UniqueConstraint('item_kind', 'item_id', 'key',
                            name=op.f('uq_clock_events_item_kind')),
    )
    op.create_index('ix_clock_events_recorded', 'clock_events', ['recorded_at'])
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('base_due_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('clock_calendar', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('evaluated', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
        batch_op.add_column(sa.Column('excluded_reason', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('suspended_since', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('ladder_round', sa.SmallInteger(), nullable=False,
                                      server_default='1'))
        batch_op.add_column(sa.Column('redo_count', sa.SmallInteger(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('extension_count', sa.SmallInteger(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('clock_events', sa.Integer(), nullable=False,
                                      server_default='0'))
    op.execute('UPDATE tickets SET base_due_at = due_at')
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('round', sa.SmallInteger(), nullable=False,
                                      server_default='1'))
        batch_op.drop_constraint(op.f('uq_escalations_item_kind'), type_='unique')
        batch_op.create_unique_constraint(op.f('uq_escalations_item_kind'),
                                          ['item_kind', 'item_id', 'step', 'round'])


def downgrade() -> None:
    op.execute('DELETE FROM escalations WHERE round > 1')
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('uq_escalations_item_kind'), type_='unique')
        batch_op.create_unique_constraint(op.f('uq_escalations_item_kind'),
                                          ['item_kind', 'item_id', 'step'])
        batch_op.drop_column('round')
    op.execute('UPDATE tickets SET due_at = base_due_at')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        for name in ('clock_events', 'extension_count', 'redo_count', 'ladder_round',
                     'suspended_since', 'excluded_reason', 'evaluated', 'clock_calendar',
                     'base_due_at'):
            batch_op.drop_column(name)
    op.drop_index('ix_clock_events_recorded', table_name='clock_events')
    op.drop_table('clock_events')
