"""tickets: a ticket may have no deadline (due_at NULL), and two more statuses

`due_at` becomes nullable: a source whose mapping takes the export's deadline only
(`deadline: export_only`, docs/sources.md) stores its rows without one as having no handling
limit (无办理时限). The status CHECK admits `cancelled` (作废) and `invalid` (无效), which
count in no rate and no ladder. Existing rows are unchanged.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 11:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

OLD = ('open', 'in_progress', 'closed', 'reopened')
NEW = (*OLD, 'cancelled', 'invalid')


def _check(statuses: tuple[str, ...]) -> str:
    return 'status IN (' + ', '.join(f"'{s}'" for s in statuses) + ')'


def upgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_tickets_ticketstatus'), type_='check')
        batch_op.create_check_constraint(op.f('ck_tickets_ticketstatus'), _check(NEW))
        batch_op.alter_column('due_at', existing_type=sa.DateTime(), nullable=True)


def downgrade() -> None:
    # Rows without a deadline or with a new status cannot go back: refuse rather than guess.
    conn = op.get_bind()
    blocking = conn.execute(
        sa.text(
            "SELECT count(*) FROM tickets WHERE due_at IS NULL OR status IN ('cancelled', 'invalid')"
        )
    ).scalar_one()
    if blocking:
        raise RuntimeError(
            f'{blocking} tickets have no deadline or a cancelled/invalid status: '
            'downgrade below 0010 would lose them'
        )
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.alter_column('due_at', existing_type=sa.DateTime(), nullable=False)
        batch_op.drop_constraint(op.f('ck_tickets_ticketstatus'), type_='check')
        batch_op.create_check_constraint(op.f('ck_tickets_ticketstatus'), _check(OLD))
