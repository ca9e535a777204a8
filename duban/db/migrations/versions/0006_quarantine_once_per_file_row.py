"""quarantine: one record per (source, file checksum, row), not one per import run

Re-importing the same export added another record of each bad row every time. The new
columns `source` and `file_sha256` key a ticket export's bad row; the importer inserts
with ON CONFLICT DO NOTHING. Existing records get their source from their import run;
their checksum is unknown (the file may have changed since) and stays NULL, which the
unique constraint does not compare. Existing duplicates — the same source, file name,
sheet, row and raw values, recorded by several ticket imports — are reduced to the first.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 21:45:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

BACKFILL_SOURCE = sa.text(
    "UPDATE quarantine SET source = (SELECT r.source FROM import_runs r "
    "WHERE r.id = quarantine.import_run_id AND r.kind = 'tickets')"
)
# Later copies of a record: same source, file, sheet, row and raw values, a smaller id.
DELETE_DUPLICATES = sa.text(
    "DELETE FROM quarantine WHERE source IS NOT NULL AND EXISTS ("
    "SELECT 1 FROM quarantine AS earlier WHERE earlier.source = quarantine.source "
    "AND earlier.file_name = quarantine.file_name "
    "AND COALESCE(earlier.sheet, '') = COALESCE(quarantine.sheet, '') "
    "AND earlier.row_number = quarantine.row_number "
    "AND CAST(earlier.raw AS TEXT) = CAST(quarantine.raw AS TEXT) "
    "AND earlier.id < quarantine.id)"
)


def upgrade() -> None:
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('file_sha256', sa.String(length=64), nullable=True))
    op.execute(BACKFILL_SOURCE)
    op.execute(DELETE_DUPLICATES)
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.create_unique_constraint(
            batch_op.f('uq_quarantine_source'), ['source', 'file_sha256', 'row_number']
        )


def downgrade() -> None:
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_quarantine_source'), type_='unique')
        batch_op.drop_column('file_sha256')
        batch_op.drop_column('source')
