"""index escalations by the day a step became due and by when it was recorded

The daily report lists the ladder steps of its window (``due_on`` in (last report, today],
or recorded by this run): without an index on either, every daily run read every step ever
recorded (4 M at Beijing size, a year's history) to find a day's few thousand.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 18:30:00
"""
from alembic import op


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.create_index('ix_escalations_due_on', ['due_on'], unique=False)
        batch_op.create_index('ix_escalations_applied', ['applied_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.drop_index('ix_escalations_applied')
        batch_op.drop_index('ix_escalations_due_on')
