// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IConsortiumGuardErrors} from "../registry/IConsortiumGuardErrors.sol";

/**
 * @dev Cross-border settlements between consortium members, their payment, refunds and their
 * multilateral netting in cycles.
 *
 * Data availability: the full details of a settlement are in the calldata and in the
 * {SettlementRecorded} event; the contract keeps one storage word per settlement (its state, its
 * refunded total and a commitment to the details). Every later transition takes the details
 * ({Settlement}) as calldata again and checks them against that commitment.
 *
 * Money is an integer of minor units with its ISO 4217 currency (three upper-case ASCII letters).
 */
interface ISettlementLedger is IConsortiumGuardErrors {
    /**
     * @dev The life of a settlement.
     *
     * - `Instructed`: recorded by the payer; it may be paid or cancelled.
     * - `Paid`: the payee received the target amount (provider evidence); it may be netted in a
     *   cycle or (partially) refunded.
     * - `InCycle`: included in a submitted netting cycle; it waits for the cycle to settle (or to be
     *   cancelled, which returns it to `Paid`). No refund while in a cycle: the cycle's nets are fixed.
     * - `Settled`: its cycle settled; it may still be (partially) refunded.
     * - `Cancelled`: withdrawn by the payer before payment. Final.
     * - `Refunded`: refunds reached the amount paid. Final.
     *
     * A partial refund keeps the state (`Paid` or `Settled`) and raises the refunded total.
     */
    enum State {
        None,
        Instructed,
        Paid,
        InCycle,
        Settled,
        Cancelled,
        Refunded
    }

    /// @dev The life of a netting cycle: submitted, then settled or cancelled.
    enum CycleState {
        None,
        Submitted,
        Settled,
        Cancelled
    }

    /**
     * @dev What the payer records. The settlement id is derived on chain from the payer's member
     * id and `clientReference` (see {settlementIdOf}), so one instruction cannot be recorded twice.
     *
     * FX rule: `fxRate` converts source minor units into target minor units with
     * {FX_RATE_SCALE} = 1e12, and rounds half up:
     * `targetAmountMinor == (sourceAmountMinor * fxRate + FX_RATE_SCALE / 2) / FX_RATE_SCALE`.
     * The currencies' minor-unit exponents are folded into the rate (USD cents -> JPY yen at
     * 150.25 JPY per USD is `fxRate = 1.5025e12`). Same currency requires `fxRate == FX_RATE_SCALE`.
     */
    struct Instruction {
        bytes32 clientReference; // the payer's own reference, unique per payer; not personal data
        bytes32 payee; // the payee's member id; an active member, not the payer
        uint128 sourceAmountMinor; // what the payer sends, 1..{AMOUNT_MINOR_MAX}
        bytes3 sourceCurrency; // ISO 4217
        uint128 targetAmountMinor; // what the payee receives, 1..{AMOUNT_MINOR_MAX}; the netted amount
        bytes3 targetCurrency; // ISO 4217
        uint64 fxRate; // target minor units per source minor unit, times {FX_RATE_SCALE}
        uint128 feesMinor; // charges in the source currency, 0..{AMOUNT_MINOR_MAX}
        uint32 valueDate; // days since 1970-01-01 (UTC); within the bounds of {VALUE_DATE_PAST_DAYS_MAX}
        bytes4 purposeCode; // ISO 20022 purpose code (e.g. "GDDS"); non-zero, otherwise opaque to the contract
        bytes32 paymentRefHash; // keccak256 of the payment reference; the reference stays off chain
    }

    /// @dev A recorded settlement: its payer's member id and the instruction, as recorded.
    struct Settlement {
        bytes32 payer;
        Instruction instruction;
    }

    /// @dev A payment provider's evidence that the payee received the target amount.
    struct PaymentEvidence {
        bytes16 provider; // e.g. "alipay", "wechatpay", "stripe" (ASCII, right-padded with zeros)
        bytes32 providerTxHash; // keccak256 of the provider's transaction id
        uint128 amountPaidMinor; // in the target currency; must equal the target amount
    }

    /// @dev A settlement `id` was already recorded.
    error SettlementAlreadyExists(bytes32 id);
    /// @dev No settlement `id` is recorded.
    error SettlementNotFound(bytes32 id);
    /// @dev The details given for settlement `id` are not the ones recorded.
    error SettlementDetailsMismatch(bytes32 id);
    /// @dev Settlement `id` is in `current`, from which the requested transition is not allowed.
    error SettlementInvalidState(bytes32 id, State current);
    /// @dev `account` (of member `memberId`) may not make this transition of settlement `id`.
    error SettlementUnauthorized(bytes32 id, address account, bytes32 memberId);
    /// @dev Payee `payee` is not an active member.
    error SettlementPayeeNotActive(bytes32 payee);
    /// @dev Payer and payee are the same member `memberId`.
    error SettlementSelfPayment(bytes32 memberId);
    /// @dev The client reference is zero.
    error SettlementInvalidReference();
    /// @dev An instruction field has bits outside its type (a non-canonical ABI encoding).
    error SettlementMalformedInstruction();
    /// @dev The purpose code is zero.
    error SettlementInvalidPurposeCode();
    /// @dev An amount is zero (where it must not be) or above {AMOUNT_MINOR_MAX}.
    error SettlementInvalidAmount(uint256 amountMinor);
    /// @dev `currency` is not three upper-case ASCII letters.
    error SettlementInvalidCurrency(bytes3 currency);
    /// @dev `targetAmountMinor` is not `sourceAmountMinor` converted at `fxRate` (rounded half up),
    /// which gives `expectedTargetMinor`; or the rate is zero, or not 1 for the same currency.
    error SettlementInconsistentFx(
        uint256 sourceAmountMinor, uint64 fxRate, uint256 targetAmountMinor, uint256 expectedTargetMinor
    );
    /// @dev `valueDate` (days since epoch) is outside [`earliest`, `latest`].
    error SettlementInvalidValueDate(uint32 valueDate, uint256 earliest, uint256 latest);
    /// @dev The evidence of settlement `id` shows `paidMinor`, not the target amount `expectedMinor`.
    error SettlementPaidAmountMismatch(bytes32 id, uint256 paidMinor, uint256 expectedMinor);
    /// @dev The evidence has no provider or no transaction hash.
    error SettlementInvalidEvidence(bytes32 id);
    /// @dev A refund of `amountMinor` would bring settlement `id`'s refunds above `paidMinor`
    /// (`refundedMinor` refunded so far); or the refund is zero.
    error SettlementRefundExceedsPaid(bytes32 id, uint256 amountMinor, uint256 refundedMinor, uint256 paidMinor);
    /// @dev A batch or cycle list has `length` items, outside [1, `max`].
    error SettlementBatchSize(uint256 length, uint256 max);
    /// @dev Parallel lists have different lengths.
    error SettlementLengthMismatch(uint256 a, uint256 b);
    /// @dev A netting cycle `cycleId` already exists (or the id is zero).
    error SettlementCycleExists(bytes32 cycleId);
    /// @dev Netting cycle `cycleId` is in `current`, from which the requested transition is not allowed.
    error SettlementCycleInvalidState(bytes32 cycleId, CycleState current);
    /// @dev Settlement `id` is in `currency`, not the cycle's currency.
    error SettlementCycleCurrencyMismatch(bytes32 id, bytes3 currency);
    /// @dev The cycle's member list is not strictly ascending at `index` (it must be sorted and unique).
    error SettlementCycleMembersNotSorted(uint256 index);
    /// @dev Member `memberId`, party to settlement `id`, is missing from the cycle's member list.
    error SettlementCycleMemberMissing(bytes32 id, bytes32 memberId);
    /// @dev Member `memberId`'s net `net` is beyond any possible net of a cycle.
    error SettlementCycleNetOutOfRange(bytes32 memberId, int256 net);
    /// @dev The nets sum to `sum`, not zero.
    error SettlementCycleNetsNotZeroSum(int256 sum);
    /// @dev Member `memberId`'s submitted net `submitted` differs from `computed` from the settlements.
    error SettlementCycleNetMismatch(bytes32 memberId, int256 submitted, int256 computed);
    /// @dev The settlement ids given are not those of cycle `cycleId`.
    error SettlementCycleSettlementsMismatch(bytes32 cycleId);

    /// @dev Settlement `id` was recorded by `payer` for `payee`; `instruction` holds every detail.
    event SettlementRecorded(
        bytes32 indexed id, bytes32 indexed payer, bytes32 indexed payee, Instruction instruction
    );
    /// @dev Settlement `id` was paid, with the provider's evidence.
    event SettlementPaid(bytes32 indexed id, bytes16 provider, bytes32 providerTxHash, uint128 amountPaidMinor);
    /// @dev Settlement `id` was cancelled by its payer.
    event SettlementCancelled(bytes32 indexed id);
    /// @dev `amountMinor` of settlement `id` was refunded; `refundedTotalMinor` so far; `fully` when the
    /// refunds reached the amount paid (the state is then `Refunded`).
    event SettlementRefunded(
        bytes32 indexed id, uint128 amountMinor, uint128 refundedTotalMinor, bytes32 refundRefHash, bool fully
    );
    /// @dev Settlement `id` was included in netting cycle `cycleId`, for `amountMinor` (paid minus refunded).
    event SettlementNetted(bytes32 indexed id, bytes32 indexed cycleId, uint128 amountMinor);
    /// @dev Settlement `id` left cancelled netting cycle `cycleId` and is `Paid` again.
    event SettlementReleased(bytes32 indexed id, bytes32 indexed cycleId);
    /// @dev Settlement `id` was settled by netting cycle `cycleId`.
    event SettlementSettled(bytes32 indexed id, bytes32 indexed cycleId);
    /// @dev Netting cycle `cycleId` in `currency` was submitted with `settlementCount` settlements;
    /// `members[i]` receives `nets[i]` minor units (negative: pays).
    event NettingCycleSubmitted(
        bytes32 indexed cycleId, bytes3 currency, uint256 settlementCount, bytes32[] members, int256[] nets
    );
    /// @dev Netting cycle `cycleId` was settled.
    event NettingCycleSettled(bytes32 indexed cycleId);
    /// @dev Netting cycle `cycleId` was cancelled; its settlements are `Paid` again.
    event NettingCycleCancelled(bytes32 indexed cycleId);
}
