"""delivery isolates failures: failed and parked deliveries, failure counts, uncertain sends,
and the worker of each run

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-03 11:45:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0010'
branch_labels = None
depends_on = None

OLD = ('pending', 'sending', 'sent', 'refused')
NEW = ('pending', 'sending', 'sent', 'refused', 'failed', 'parked')


def _status(values: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(*values, name='deliverystatus', native_enum=False, create_constraint=True,
                   length=24)


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_deliveries_deliverystatus'), type_='check')
        batch_op.add_column(sa.Column('failures', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('uncertain', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_check_constraint(
            op.f('ck_deliveries_deliverystatus'), sa.column('status').in_(NEW)
        )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('worker', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('worker')
    op.execute("UPDATE deliveries SET status = 'pending' WHERE status IN ('failed', 'parked')")
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_deliveries_deliverystatus'), type_='check')
        batch_op.drop_column('uncertain')
        batch_op.drop_column('failures')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_check_constraint(
            op.f('ck_deliveries_deliverystatus'), sa.column('status').in_(OLD)
        )
