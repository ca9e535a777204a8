"""the supervision clock's refusals stored: every event refused (late, over a cap, an
unknown or closed ticket, ...), once per item, event key and reason code

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 18:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
    op.create_table(
        'clock_refusals',
        sa.Column('id', big_id, autoincrement=True, nullable=False),
        sa.Column('item_kind', sa.String(length=24), nullable=False),
        sa.Column('item_ref', sa.String(length=200), nullable=False),
        sa.Column('item_id', sa.BigInteger(), nullable=True),
        sa.Column('event_key', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=True),
        sa.Column('actor', sa.String(length=200), nullable=False),
        sa.Column('code', sa.String(length=32), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('origin', sa.String(length=32), nullable=False),
        sa.Column('origin_ref', sa.String(length=500), nullable=True),
        sa.Column('recorded_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_clock_refusals')),
        sa.UniqueConstraint('item_kind', 'item_ref', 'event_key', 'code',
                            name=op.f('uq_clock_refusals_item_kind')),
    )
    op.create_index('ix_clock_refusals_at', 'clock_refusals', ['at'])


def downgrade() -> None:
    op.drop_index('ix_clock_refusals_at', table_name='clock_refusals')
    op.drop_table('clock_refusals')
