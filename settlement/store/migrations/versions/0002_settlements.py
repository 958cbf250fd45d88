"""settlements: settlements, their operations and refunds, netting cycles, the double-entry journal

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 02:33:22.684536
"""
import sqlalchemy as sa
from alembic import op

# Exact integers of minor units up to 60 digits (beyond SQLite's 64-bit integers): NUMERIC on
# PostgreSQL, a decimal string on SQLite (see settlement.store.models.settlements.MinorAmount).
AMOUNT = sa.String(length=61).with_variant(sa.Numeric(60, 0), "postgresql")


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('journal_balances',
    sa.Column('owner', sa.String(length=64), nullable=False),
    sa.Column('account', sa.String(length=32), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('debit_minor', AMOUNT, nullable=False),
    sa.Column('credit_minor', AMOUNT, nullable=False),
    sa.Column('entry_count', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('owner', 'account', 'currency')
    )
    op.create_table('journal_transactions',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('settlement_id', sa.String(length=66), nullable=True),
    sa.Column('cycle_id', sa.String(length=66), nullable=True),
    sa.Column('reverses', sa.String(length=32), nullable=True),
    sa.Column('memo', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('journal_transactions', schema=None) as batch_op:
        batch_op.create_index('ix_journal_txn_settlement', ['settlement_id'], unique=False)

    op.create_table('netting_cycles',
    sa.Column('id', sa.String(length=66), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('settlement_ids', sa.JSON(), nullable=False),
    sa.Column('members', sa.JSON(), nullable=False),
    sa.Column('nets', sa.JSON(), nullable=False),
    sa.Column('gross_count', sa.Integer(), nullable=False),
    sa.Column('gross_value_minor', AMOUNT, nullable=False),
    sa.Column('net_count', sa.Integer(), nullable=False),
    sa.Column('net_value_minor', AMOUNT, nullable=False),
    sa.Column('closed_by', sa.String(length=64), nullable=False),
    sa.Column('chain_op', sa.String(length=16), nullable=False),
    sa.Column('chain_status', sa.String(length=16), nullable=False),
    sa.Column('outbox_id', sa.BigInteger(), nullable=True),
    sa.Column('submit_tx_hash', sa.String(length=66), nullable=True),
    sa.Column('submit_block', sa.BigInteger(), nullable=True),
    sa.Column('settle_tx_hash', sa.String(length=66), nullable=True),
    sa.Column('settle_block', sa.BigInteger(), nullable=True),
    sa.Column('settle_journal_txn_id', sa.String(length=32), nullable=True),
    sa.Column('chain_error', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('netting_cycles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_netting_cycles_currency'), ['currency'], unique=False)
        batch_op.create_index(batch_op.f('ix_netting_cycles_outbox_id'), ['outbox_id'], unique=False)

    op.create_table('settlement_operations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('settlement_id', sa.String(length=66), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('outbox_id', sa.BigInteger(), nullable=True),
    sa.Column('prev_state', sa.String(length=16), nullable=False),
    sa.Column('amount_minor', AMOUNT, nullable=True),
    sa.Column('refund_id', sa.Integer(), nullable=True),
    sa.Column('cycle_id', sa.String(length=66), nullable=True),
    sa.Column('journal_txn_id', sa.String(length=32), nullable=True),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=True),
    sa.Column('block_number', sa.BigInteger(), nullable=True),
    sa.Column('error', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('settlement_operations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_settlement_operations_outbox_id'), ['outbox_id'], unique=False)
        batch_op.create_index('ix_settlement_ops_settlement', ['settlement_id', 'id'], unique=False)

    op.create_table('settlement_refunds',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('settlement_id', sa.String(length=66), nullable=False),
    sa.Column('amount_minor', AMOUNT, nullable=False),
    sa.Column('reference', sa.String(length=140), nullable=False),
    sa.Column('reference_hash', sa.String(length=66), nullable=False),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('settlement_id', 'reference_hash', name='uq_refunds_reference')
    )
    with op.batch_alter_table('settlement_refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_settlement_refunds_settlement_id'), ['settlement_id'], unique=False)

    op.create_table('journal_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('txn_id', sa.String(length=32), nullable=False),
    sa.Column('owner', sa.String(length=64), nullable=False),
    sa.Column('account', sa.String(length=32), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('side', sa.String(length=1), nullable=False),
    sa.Column('amount_minor', AMOUNT, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['txn_id'], ['journal_transactions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.create_index('ix_journal_entries_owner', ['owner', 'currency', 'id'], unique=False)
        batch_op.create_index('ix_journal_entries_txn', ['txn_id'], unique=False)

    op.create_table('settlements',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('id', sa.String(length=66), nullable=False),
    sa.Column('payer_id', sa.String(length=64), nullable=False),
    sa.Column('payee_id', sa.String(length=64), nullable=False),
    sa.Column('payer_onchain_id', sa.String(length=66), nullable=False),
    sa.Column('payee_onchain_id', sa.String(length=66), nullable=False),
    sa.Column('client_reference', sa.String(length=64), nullable=False),
    sa.Column('client_reference_hash', sa.String(length=66), nullable=False),
    sa.Column('source_amount_minor', AMOUNT, nullable=False),
    sa.Column('source_currency', sa.String(length=3), nullable=False),
    sa.Column('target_amount_minor', AMOUNT, nullable=False),
    sa.Column('target_currency', sa.String(length=3), nullable=False),
    sa.Column('fx_rate_scaled', AMOUNT, nullable=False),
    sa.Column('fees_minor', AMOUNT, nullable=False),
    sa.Column('value_date', sa.Date(), nullable=False),
    sa.Column('purpose_code', sa.String(length=4), nullable=False),
    sa.Column('payment_reference', sa.String(length=140), nullable=False),
    sa.Column('payment_ref_hash', sa.String(length=66), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('paid_minor', AMOUNT, nullable=False),
    sa.Column('refunded_minor', AMOUNT, nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=True),
    sa.Column('provider_tx_hash', sa.String(length=66), nullable=True),
    sa.Column('cycle_id', sa.String(length=66), nullable=True),
    sa.Column('batch_outbox_id', sa.BigInteger(), nullable=True),
    sa.Column('chain_op', sa.String(length=16), nullable=False),
    sa.Column('chain_status', sa.String(length=16), nullable=False),
    sa.Column('outbox_id', sa.BigInteger(), nullable=True),
    sa.Column('tx_hash', sa.String(length=66), nullable=True),
    sa.Column('block_number', sa.BigInteger(), nullable=True),
    sa.Column('recorded_tx_hash', sa.String(length=66), nullable=True),
    sa.Column('recorded_block', sa.BigInteger(), nullable=True),
    sa.Column('chain_error', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cycle_id'], ['netting_cycles.id'], ),
    sa.ForeignKeyConstraint(['payee_id'], ['members.id'], ),
    sa.ForeignKeyConstraint(['payer_id'], ['members.id'], ),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('id'),
    sa.UniqueConstraint('payer_id', 'client_reference', name='uq_settlements_payer_reference'),
    sa.UniqueConstraint('payment_ref_hash')
    )
    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.create_index('ix_settlements_netting', ['target_currency', 'state', 'cycle_id', 'seq'], unique=False)
        batch_op.create_index(batch_op.f('ix_settlements_outbox_id'), ['outbox_id'], unique=False)
        batch_op.create_index('ix_settlements_payee_seq', ['payee_id', 'seq'], unique=False)
        batch_op.create_index('ix_settlements_payer_seq', ['payer_id', 'seq'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.drop_index('ix_settlements_payer_seq')
        batch_op.drop_index('ix_settlements_payee_seq')
        batch_op.drop_index(batch_op.f('ix_settlements_outbox_id'))
        batch_op.drop_index('ix_settlements_netting')

    op.drop_table('settlements')
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_journal_entries_txn')
        batch_op.drop_index('ix_journal_entries_owner')

    op.drop_table('journal_entries')
    with op.batch_alter_table('settlement_refunds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_settlement_refunds_settlement_id'))

    op.drop_table('settlement_refunds')
    with op.batch_alter_table('settlement_operations', schema=None) as batch_op:
        batch_op.drop_index('ix_settlement_ops_settlement')
        batch_op.drop_index(batch_op.f('ix_settlement_operations_outbox_id'))

    op.drop_table('settlement_operations')
    with op.batch_alter_table('netting_cycles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_netting_cycles_outbox_id'))
        batch_op.drop_index(batch_op.f('ix_netting_cycles_currency'))

    op.drop_table('netting_cycles')
    with op.batch_alter_table('journal_transactions', schema=None) as batch_op:
        batch_op.drop_index('ix_journal_txn_settlement')

    op.drop_table('journal_transactions')
    op.drop_table('journal_balances')
