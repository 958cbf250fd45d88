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
     * - `Paid`: the payee received the target amount: provider evidence attested by the operator
     *   (never the payee's word, see {markPaid}); it may be netted in a cycle or (partially) refunded.
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

    /**
     * @dev A payment provider's evidence that money moved: the payee received a settlement's target
     * amount ({markPaid}), a net payer paid its net into a cycle ({attestNetPayment}), or the payee
     * returned a refund ({attestRefund}). One provider transaction evidences one payment only: the
     * pair (`provider`, `providerTxHash`) is spent on chain when first used ({evidenceUsedBy}).
     */
    struct PaymentEvidence {
        bytes16 provider; // e.g. "alipay", "wechatpay", "stripe" (ASCII, right-padded with zeros)
        bytes32 providerTxHash; // keccak256 of the provider's transaction id
        uint128 amountPaidMinor; // in the settlement's (cycle's) currency; must equal the amount due
    }

    /// @dev A netting cycle as stored.
    struct NettingCycle {
        CycleState state;
        bytes3 currency;
        uint16 settlementCount;
        uint64 submittedAt; // block timestamp of the submission
        uint16 netPayerCount; // members with a negative net: each must pay it in ({attestNetPayment})
        uint16 netPaymentsAttested; // how many of them have an attested payment so far
        bytes32 settlementsHash; // keccak256(abi.encodePacked(settlement ids)), in submission order
        bytes32 netsHash; // keccak256(abi.encode(members, nets))
    }

    // ---- errors -------------------------------------------------------------------------------

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
    /// @dev Settlement `id`'s value date `valueDate` is after `today` (the block's UTC day): it cannot be
    /// paid yet (and, unpaid, cannot be netted).
    error SettlementValueDateNotReached(bytes32 id, uint32 valueDate, uint256 today);
    /// @dev The evidence for `subject` (a settlement or cycle) shows `paidMinor`, not the amount due `expectedMinor`.
    error SettlementPaidAmountMismatch(bytes32 subject, uint256 paidMinor, uint256 expectedMinor);
    /// @dev The evidence for `subject` (a settlement or cycle) has no provider or no transaction hash.
    error SettlementInvalidEvidence(bytes32 subject);
    /// @dev Provider transaction (`provider`, `providerTxHash`) already evidenced a payment (or, for
    /// refunds, a refund) of `usedBy` (a settlement or cycle id).
    error SettlementEvidenceUsed(bytes16 provider, bytes32 providerTxHash, bytes32 usedBy);
    /// @dev The attestor, member `memberId`, is a party to `subject` (the settlement's payer or payee,
    /// or the net payer itself): a party never attests its own payment.
    error SettlementAttestorIsParty(bytes32 subject, bytes32 memberId);
    /// @dev Member `memberId`, a party to `subject` (a settlement or cycle), is not active (suspended).
    error SettlementPartyNotActive(bytes32 subject, bytes32 memberId);
    /// @dev Settlement `id`'s payee already acknowledged its receipt.
    error SettlementAlreadyAcknowledged(bytes32 id);
    /// @dev A refund of `amountMinor` would bring settlement `id`'s refunds above `paidMinor`
    /// (`refundedMinor` refunded so far); or the refund is zero.
    error SettlementRefundExceedsPaid(bytes32 id, uint256 amountMinor, uint256 refundedMinor, uint256 paidMinor);
    /// @dev The refund reference of settlement `id` is zero.
    error SettlementInvalidRefundReference(bytes32 id);
    /// @dev Settlement `id` already has a refund with reference `refundRefHash`.
    error SettlementRefundReferenceUsed(bytes32 id, bytes32 refundRefHash);
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
    /// @dev Member `memberId`, party to `subject` (a settlement or cycle), is missing from the cycle's member list.
    error SettlementCycleMemberMissing(bytes32 subject, bytes32 memberId);
    /// @dev Member `memberId`'s net `net` is beyond any possible net of a cycle.
    error SettlementCycleNetOutOfRange(bytes32 memberId, int256 net);
    /// @dev The nets sum to `sum`, not zero.
    error SettlementCycleNetsNotZeroSum(int256 sum);
    /// @dev Member `memberId`'s submitted net `submitted` differs from `computed` from the settlements.
    error SettlementCycleNetMismatch(bytes32 memberId, int256 submitted, int256 computed);
    /// @dev The settlement ids given are not those of cycle `cycleId`.
    error SettlementCycleSettlementsMismatch(bytes32 cycleId);
    /// @dev The members and nets given are not those of cycle `cycleId`.
    error SettlementCycleNetsMismatch(bytes32 cycleId);
    /// @dev Member `memberId` has net `net` in cycle `cycleId`: it owes nothing to pay in.
    error SettlementCycleNotNetPayer(bytes32 cycleId, bytes32 memberId, int256 net);
    /// @dev Member `memberId`'s payment into cycle `cycleId` is already attested.
    error SettlementCycleNetPaymentAttested(bytes32 cycleId, bytes32 memberId);
    /// @dev Cycle `cycleId` has `attested` of its `required` net payments attested: it cannot settle.
    error SettlementCycleNetPaymentsMissing(bytes32 cycleId, uint256 attested, uint256 required);

    // ---- events -------------------------------------------------------------------------------

    /// @dev Settlement `id` was recorded by `payer` for `payee`; `instruction` holds every detail.
    event SettlementRecorded(
        bytes32 indexed id, bytes32 indexed payer, bytes32 indexed payee, Instruction instruction
    );
    /// @dev Settlement `id` was paid: the provider's evidence, attested by member `attestor`.
    event SettlementPaid(
        bytes32 indexed id, bytes16 provider, bytes32 providerTxHash, uint128 amountPaidMinor, bytes32 attestor
    );
    /// @dev Settlement `id`'s payee acknowledged receiving the money (its own word: a weaker fact than
    /// {SettlementPaid}, which changes nothing of the settlement's state).
    event SettlementReceiptAcknowledged(bytes32 indexed id, bytes32 indexed payee);
    /// @dev Settlement `id` was cancelled by its payer.
    event SettlementCancelled(bytes32 indexed id);
    /// @dev `amountMinor` of settlement `id` was refunded; `refundedTotalMinor` so far; `fully` when the
    /// refunds reached the amount paid (the state is then `Refunded`).
    event SettlementRefunded(
        bytes32 indexed id, uint128 amountMinor, uint128 refundedTotalMinor, bytes32 refundRefHash, bool fully
    );
    /// @dev The refund of settlement `id` that follows in the same transaction is the provider's refund
    /// transaction (`provider`, `providerTxHash`), attested by member `attestor`.
    event SettlementRefundAttested(bytes32 indexed id, bytes16 provider, bytes32 providerTxHash, bytes32 attestor);
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
    /// @dev Member `member` paid its net `amountMinor` into cycle `cycleId`: the provider's evidence,
    /// attested by member `attestor`.
    event NetPaymentAttested(
        bytes32 indexed cycleId,
        bytes32 indexed member,
        bytes16 provider,
        bytes32 providerTxHash,
        uint128 amountMinor,
        bytes32 attestor
    );
    /// @dev Netting cycle `cycleId` was settled.
    event NettingCycleSettled(bytes32 indexed cycleId);
    /// @dev Netting cycle `cycleId` was cancelled; its settlements are `Paid` again.
    event NettingCycleCancelled(bytes32 indexed cycleId);

    // ---- record -------------------------------------------------------------------------------

    /**
     * @dev Records a settlement instruction from the caller's member to `ins.payee`.
     *
     * Requirements:
     * - the caller is an account of an active member holding the FINANCE role (the payer);
     * - the id is new ({SettlementAlreadyExists}), the client reference non-zero;
     * - the payee is another, active member ({SettlementSelfPayment}, {SettlementPayeeNotActive});
     * - amounts in 1..{AMOUNT_MINOR_MAX} (fees 0..), ISO 4217-shaped currencies;
     * - the FX rule of {Instruction} holds ({SettlementInconsistentFx});
     * - the value date is within [today - {VALUE_DATE_PAST_DAYS_MAX}, today + {VALUE_DATE_FUTURE_DAYS_MAX}]
     *   (today: the block's UTC day), the purpose code non-zero;
     * - a canonical ABI encoding ({SettlementMalformedInstruction}).
     *
     * Emits {SettlementRecorded}.
     *
     * @param ins the instruction
     * @return id `keccak256(abi.encode(payerMemberId, ins.clientReference))` ({settlementIdOf})
     */
    function recordSettlement(Instruction calldata ins) external returns (bytes32 id);

    /**
     * @dev Records up to {BATCH_SIZE_MAX} instructions with the rules of {recordSettlement} (payee 0
     * included: it is no active member). All or nothing: any invalid item reverts the batch with its error.
     *
     * Emits one {SettlementRecorded} per instruction.
     *
     * @param batch the instructions, 1..{BATCH_SIZE_MAX}
     * @return ids their settlement ids, in order
     */
    function recordBatch(Instruction[] calldata batch) external returns (bytes32[] memory ids);

    // ---- pay, acknowledge, cancel, refund -------------------------------------------------------

    /**
     * @dev Marks settlement `s` paid with the provider's `evidence`, attested by the caller.
     *
     * The attestor is the operator: the service that verified the provider's signature on the
     * notification. Neither party attests its own payment: the payee's word is
     * {acknowledgeReceipt}, which changes nothing.
     *
     * Requirements:
     * - the caller is an active member with the OPERATOR role that is neither payer nor payee
     *   ({SettlementUnauthorized}, {SettlementAttestorIsParty});
     * - payer and payee are active ({SettlementPartyNotActive});
     * - `s` is the recorded settlement and is `Instructed`; its value date has come
     *   ({SettlementValueDateNotReached});
     * - the evidence names a provider and a transaction hash not used before by any payment
     *   ({SettlementEvidenceUsed}), and shows exactly the target amount ({SettlementPaidAmountMismatch}).
     *
     * Emits {SettlementPaid}.
     *
     * @param s the settlement as recorded
     * @param evidence the provider's transaction
     */
    function markPaid(Settlement calldata s, PaymentEvidence calldata evidence) external;

    /**
     * @dev Marks up to {BATCH_SIZE_MAX} settlements paid, `evidence[i]` for `settlements[i]`, with the
     * rules of {markPaid}. All or nothing.
     *
     * Emits one {SettlementPaid} per settlement.
     *
     * @param settlements the settlements as recorded
     * @param evidence one provider transaction per settlement
     */
    function markPaidBatch(Settlement[] calldata settlements, PaymentEvidence[] calldata evidence) external;

    /**
     * @dev The payee acknowledges receiving settlement `s`'s money. Recorded (once), but it neither
     * ends the payer's right to cancel nor makes the settlement nettable: only attested evidence
     * ({markPaid}) does.
     *
     * Requirements: the caller is an account of the payee holding FINANCE (active); `s` is the
     * recorded settlement, `Instructed` or `Paid`, not yet acknowledged ({SettlementAlreadyAcknowledged}).
     *
     * Emits {SettlementReceiptAcknowledged}.
     *
     * @param s the settlement as recorded
     */
    function acknowledgeReceipt(Settlement calldata s) external;

    /**
     * @dev Cancels settlement `s` before it is paid.
     *
     * Requirements: the caller is an account of the payer holding FINANCE (active); `s` is the
     * recorded settlement and is `Instructed`.
     *
     * Emits {SettlementCancelled}.
     *
     * @param s the settlement as recorded
     */
    function cancelSettlement(Settlement calldata s) external;

    /**
     * @dev The payee refunds `amountMinor` (target currency) of settlement `s`: it returns the money.
     * A partial refund keeps the state and raises the refunded total; the refund that brings it to
     * the amount paid makes the state `Refunded`. The operator cannot refund this way (a provider's
     * refund is {attestRefund}).
     *
     * Requirements:
     * - the caller is an account of the payee holding FINANCE; the payer is active too;
     * - `s` is the recorded settlement and is `Paid` or `Settled` (not while in a netting cycle);
     * - `refundRefHash` is non-zero and new for this settlement ({SettlementRefundReferenceUsed});
     * - `0 < amountMinor` and refunded total + `amountMinor` <= the amount paid.
     *
     * Emits {SettlementRefunded}.
     *
     * @param s the settlement as recorded
     * @param amountMinor the refund, in the target currency's minor units
     * @param refundRefHash keccak256 of the refund's reference, unique per settlement
     */
    function refund(Settlement calldata s, uint128 amountMinor, bytes32 refundRefHash) external;

    /**
     * @dev A provider's refund notification for settlement `s`, attested like a payment: refunds
     * `evidence.amountPaidMinor` with the rules of {refund}, the attestor's rules of {markPaid}, and
     * the refund transaction unused by any refund before ({SettlementEvidenceUsed}).
     *
     * Emits {SettlementRefundAttested}, then {SettlementRefunded}.
     *
     * @param s the settlement as recorded
     * @param refundRefHash keccak256 of the refund's reference, unique per settlement
     * @param evidence the provider's refund transaction and the amount refunded
     */
    function attestRefund(Settlement calldata s, bytes32 refundRefHash, PaymentEvidence calldata evidence) external;

    // ---- netting ------------------------------------------------------------------------------

    /**
     * @dev Submits netting cycle `cycleId` in `currency` over the `Paid` settlements `settlements`:
     * `members` (strictly ascending) receive `nets` (negative: pay). The contract recomputes the
     * nets from the settlements (each adds its outstanding amount, target amount minus refunds, to
     * its payee and subtracts it from its payer) and requires them equal. The settlements become
     * `InCycle` until {settleNettingCycle} or {cancelNettingCycle}.
     *
     * Requirements:
     * - the caller is an active member with the OPERATOR role;
     * - `cycleId` is new and non-zero;
     * - 1..{SETTLEMENTS_PER_CYCLE_MAX} settlements, each recorded, `Paid` (so its value date has come:
     *   {markPaid} requires it), with target currency `currency`;
     * - 1..{MEMBERS_PER_CYCLE_MAX} members, strictly ascending, each active ({SettlementPartyNotActive}),
     *   including every payer and payee;
     * - `nets` within +-{SETTLEMENTS_PER_CYCLE_MAX} * {AMOUNT_MINOR_MAX}, summing to zero, equal to the
     *   recomputed nets (a listed member without settlements has net zero).
     *
     * Emits one {SettlementNetted} per settlement, then {NettingCycleSubmitted}.
     *
     * @param cycleId the new cycle's id
     * @param currency the cycle's currency (ISO 4217)
     * @param settlements the settlements as recorded
     * @param members the members, strictly ascending
     * @param nets each member's net (receives if positive, pays if negative)
     */
    function submitNettingCycle(
        bytes32 cycleId,
        bytes3 currency,
        Settlement[] calldata settlements,
        bytes32[] calldata members,
        int256[] calldata nets
    ) external;

    /**
     * @dev Attests that `member`, a net payer of submitted cycle `cycleId`, paid its net into it.
     *
     * Requirements:
     * - the caller is an active member with the OPERATOR role, other than `member`
     *   ({SettlementAttestorIsParty});
     * - the cycle is `Submitted`; `members` and `nets` are the cycle's ({SettlementCycleNetsMismatch});
     * - `member` is listed ({SettlementCycleMemberMissing}), active, with a negative net
     *   ({SettlementCycleNotNetPayer}), not attested yet ({SettlementCycleNetPaymentAttested});
     * - the evidence names a provider transaction unused by any payment, of exactly the net owed.
     *
     * Emits {NetPaymentAttested}.
     *
     * @param cycleId the cycle
     * @param members the cycle's members, as submitted
     * @param nets the cycle's nets, as submitted
     * @param member the net payer
     * @param evidence the provider's transaction paying the net in
     */
    function attestNetPayment(
        bytes32 cycleId,
        bytes32[] calldata members,
        int256[] calldata nets,
        bytes32 member,
        PaymentEvidence calldata evidence
    ) external;

    /**
     * @dev Settles submitted netting cycle `cycleId`: each of its settlements, `settlementIds` in
     * submission order, becomes `Settled`.
     *
     * Requirements: the caller is an active member with the OPERATOR role; the cycle is `Submitted`;
     * `settlementIds` are exactly the cycle's, in order ({SettlementCycleSettlementsMismatch});
     * `members` and `nets` are the cycle's ({SettlementCycleNetsMismatch}), every member is active
     * ({SettlementPartyNotActive}); every net payer's payment is attested
     * ({SettlementCycleNetPaymentsMissing}).
     *
     * Emits one {SettlementSettled} per settlement, then {NettingCycleSettled}.
     *
     * @param cycleId the cycle
     * @param settlementIds the cycle's settlement ids, in submission order
     * @param members the cycle's members, as submitted
     * @param nets the cycle's nets, as submitted
     */
    function settleNettingCycle(
        bytes32 cycleId,
        bytes32[] calldata settlementIds,
        bytes32[] calldata members,
        int256[] calldata nets
    ) external;

    /**
     * @dev Cancels submitted netting cycle `cycleId`: its settlements are `Paid` again and may be
     * netted in another cycle (or refunded). Net payments attested for it stay on chain: the
     * operator returns them off chain.
     *
     * Requirements: the caller is an active member with the OPERATOR role; the cycle is `Submitted`;
     * `settlementIds` are exactly the cycle's, in order.
     *
     * Emits one {SettlementReleased} per settlement, then {NettingCycleCancelled}.
     *
     * @param cycleId the cycle
     * @param settlementIds the cycle's settlement ids, in submission order
     */
    function cancelNettingCycle(bytes32 cycleId, bytes32[] calldata settlementIds) external;

    // ---- views --------------------------------------------------------------------------------

    /**
     * @dev The id of the settlement recorded by member `payer` under `clientReference`.
     * @param payer the payer's member id
     * @param clientReference the payer's reference
     * @return id `keccak256(abi.encode(payer, clientReference))`
     */
    function settlementIdOf(bytes32 payer, bytes32 clientReference) external pure returns (bytes32 id);

    /**
     * @dev The full commitment to `s`; storage keeps its top 152 bits.
     * @param s a settlement
     * @return `keccak256(abi.encode(s))`
     */
    function commitmentOf(Settlement calldata s) external pure returns (bytes32);

    /**
     * @dev Settlement `id`'s stored word.
     * @param id the settlement id
     * @return state its state
     * @return refundedTotalMinor its refunded total (target minor units)
     * @return commitment its stored commitment bits
     */
    function getSettlement(bytes32 id)
        external
        view
        returns (State state, uint128 refundedTotalMinor, bytes19 commitment);

    /**
     * @dev Whether settlement `id`'s payee acknowledged its receipt ({acknowledgeReceipt}).
     * @param id the settlement id
     * @return whether it did
     */
    function isAcknowledged(bytes32 id) external view returns (bool);

    /**
     * @dev Whether `s` is exactly a recorded settlement (for auditors and the service's follower).
     * @param s a settlement
     * @return whether `s` was recorded with exactly these details
     */
    function isRecorded(Settlement calldata s) external view returns (bool);

    /**
     * @dev Netting cycle `cycleId`.
     * @param cycleId the cycle id
     * @return the stored cycle (all zero if unknown)
     */
    function getNettingCycle(bytes32 cycleId) external view returns (NettingCycle memory);

    /**
     * @dev Whether `member`'s payment into cycle `cycleId` is attested.
     * @param cycleId the cycle id
     * @param member a member id
     * @return whether it is
     */
    function isNetPaymentAttested(bytes32 cycleId, bytes32 member) external view returns (bool);

    /**
     * @dev What provider transaction (`provider`, `providerTxHash`) evidenced.
     * @param provider the provider
     * @param providerTxHash keccak256 of the provider's transaction id
     * @param isRefund the refund namespace (a refund transaction) rather than the payment one
     * @return usedBy the settlement (or, for a net payment, cycle) id it evidenced; zero if unused
     */
    function evidenceUsedBy(bytes16 provider, bytes32 providerTxHash, bool isRefund)
        external
        view
        returns (bytes32 usedBy);

    /// @return Most instructions (or payments) per batch.
    function BATCH_SIZE_MAX() external view returns (uint256);
    /// @return Most settlements per netting cycle.
    function SETTLEMENTS_PER_CYCLE_MAX() external view returns (uint256);
    /// @return Most members per netting cycle.
    function MEMBERS_PER_CYCLE_MAX() external view returns (uint256);
    /// @return Fixed-point scale of {Instruction-fxRate}: a rate of 1 is 1e12.
    function FX_RATE_SCALE() external view returns (uint256);
    /// @return Largest amount, in minor units.
    function AMOUNT_MINOR_MAX() external view returns (uint256);
    /// @return How many days before the block's day a value date may be (late recording).
    function VALUE_DATE_PAST_DAYS_MAX() external view returns (uint256);
    /// @return How many days after the block's day a value date may be.
    function VALUE_DATE_FUTURE_DAYS_MAX() external view returns (uint256);
}
