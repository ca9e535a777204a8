"""a bulletin is a record: publications, their figures and their frozen files

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 21:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'publications',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('loop', sa.String(length=24), nullable=False),
        sa.Column('period', sa.String(length=24), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('notice_kind', sa.String(length=32), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('published_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_publications')),
        sa.UniqueConstraint('loop', 'period', 'version', name=op.f('uq_publications_loop')),
    )
    op.create_table(
        'published_figures',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('publication_id', sa.Integer(), nullable=False),
        sa.Column('unit', sa.String(length=64), nullable=False),
        sa.Column('figure', sa.String(length=100), nullable=False),
        sa.Column('label', sa.String(length=300), nullable=False),
        sa.Column('value', sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ['publication_id'], ['publications.id'], ondelete='CASCADE',
            name=op.f('fk_published_figures_publication_id_publications'),
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_published_figures')),
        sa.UniqueConstraint(
            'publication_id', 'unit', 'figure', name=op.f('uq_published_figures_publication_id')
        ),
    )
    op.create_index(
        op.f('ix_published_figures_publication_id'), 'published_figures', ['publication_id']
    )
    op.create_table(
        'published_files',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('publication_id', sa.Integer(), nullable=False),
        sa.Column('notice_id', sa.Integer(), nullable=True),
        sa.Column('name', sa.String(length=300), nullable=False),
        sa.Column('path', sa.String(length=500), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ['publication_id'], ['publications.id'], ondelete='CASCADE',
            name=op.f('fk_published_files_publication_id_publications'),
        ),
        sa.ForeignKeyConstraint(
            ['notice_id'], ['notices.id'], name=op.f('fk_published_files_notice_id_notices')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_published_files')),
        sa.UniqueConstraint(
            'publication_id', 'name', name=op.f('uq_published_files_publication_id')
        ),
    )
    op.create_index(
        op.f('ix_published_files_publication_id'), 'published_files', ['publication_id']
    )


def downgrade() -> None:
    op.drop_index(op.f('ix_published_files_publication_id'), table_name='published_files')
    op.drop_table('published_files')
    op.drop_index(op.f('ix_published_figures_publication_id'), table_name='published_figures')
    op.drop_table('published_figures')
    op.drop_table('publications')
