"""index tickets by address and community with their receipt time (look-back's self-join)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 07:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index('ix_tickets_address_received', ['address', 'received_at'], unique=False)
        batch_op.create_index('ix_tickets_community_received', ['community', 'received_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_community_received')
        batch_op.drop_index('ix_tickets_address_received')
