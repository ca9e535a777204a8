"""tickets.place_key: district|street|normalised address, the one notion of "same place"

Adds the column, fills it for the tickets already stored (in batches of ids, computed by
duban.rules.places.place_key — the rule of the code this migration ships with), indexes it
with the receipt time for the look-back's self-join and the repeat complaints, and drops the
address index of 0004 that those queries no longer use.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-02 21:40:00
"""
from alembic import op
import sqlalchemy as sa

from duban.rules.places import MAX_LENGTH, place_key


revision = '0008'
down_revision = '0006'
branch_labels = None
depends_on = None

BATCH = 5000


def _backfill() -> None:
    conn = op.get_bind()
    tickets = sa.table(
        'tickets',
        sa.column('id', sa.BigInteger),
        sa.column('district', sa.String),
        sa.column('street', sa.String),
        sa.column('address', sa.String),
        sa.column('place_key', sa.String),
    )
    update = (
        sa.update(tickets)
        .where(tickets.c.id == sa.bindparam('ticket_id'))
        .values(place_key=sa.bindparam('key'))
    )
    last = None
    while True:
        stmt = sa.select(tickets.c.id, tickets.c.district, tickets.c.street, tickets.c.address)
        if last is not None:
            stmt = stmt.where(tickets.c.id > last)
        rows = conn.execute(stmt.order_by(tickets.c.id).limit(BATCH)).all()
        if not rows:
            return
        values = [
            {'ticket_id': r.id, 'key': place_key(r.district, r.street, r.address)}
            for r in rows
        ]
        values = [v for v in values if v['key'] is not None]
        if values:
            conn.execute(update, values)
        last = rows[-1].id


def upgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('place_key', sa.String(length=MAX_LENGTH), nullable=True))
    _backfill()
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_address_received')
        batch_op.create_index(
            'ix_tickets_place_received', ['place_key', 'received_at'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_place_received')
        batch_op.create_index('ix_tickets_address_received', ['address', 'received_at'], unique=False)
        batch_op.drop_column('place_key')
