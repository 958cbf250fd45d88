// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ConsortiumGuarded} from "../registry/ConsortiumGuarded.sol";
import {IConsortiumRegistry} from "../registry/IConsortiumRegistry.sol";
import {ISettlementLedger} from "./ISettlementLedger.sol";

/**
 * @dev The settlement ledger: members record settlements, providers' evidence marks them paid,
 * payees refund them, and the operator nets paid settlements per currency in cycles that settle
 * them. Every transition checks, on chain, who may make it (through the {IConsortiumRegistry}).
 *
 * Storage: ONE word per settlement, written once when recorded (the only fresh slot on the record
 * path) and updated in place afterwards:
 *
 * ```
 *  bit 255                                      104 103                  8 7       0
 *  | commitment: top 152 bits of keccak256(details) | refunded total (uint96) | state |
 * ```
 *
 * - `state` is a {State}.
 * - `refunded total` is the sum of refunds in the target currency's minor units; it never exceeds
 *   the amount paid, which equals the target amount (see {markPaid}).
 * - `commitment` is the top 152 bits of `keccak256(abi.encode(settlement))` for the
 *   {Settlement} `(payer, instruction)`; a forgery needs a 152-bit (second) preimage, a
 *   self-made collision 2^76 work, and any mismatch with the {SettlementRecorded} event is public.
 *
 * Amounts are `uint128` in the ABI but bounded by {AMOUNT_MINOR_MAX} (2^96 - 1, about 7.9e28
 * minor units) so that the refunded total fits its 96 bits.
 *
 * Batches and cycles are all-or-nothing: one invalid item reverts the whole transaction, with the
 * item's own error (the service validates before it submits).
 */
contract SettlementLedger is ConsortiumGuarded, ISettlementLedger {
    /// @dev Most instructions (or payments) per batch.
    uint256 public constant BATCH_SIZE_MAX = 200;
    /// @dev Most settlements per netting cycle.
    uint256 public constant SETTLEMENTS_PER_CYCLE_MAX = 200;
    /// @dev Most members per netting cycle.
    uint256 public constant MEMBERS_PER_CYCLE_MAX = 64;
    /// @dev Fixed-point scale of {Instruction-fxRate}: a rate of 1 is 1e12.
    uint256 public constant FX_RATE_SCALE = 1e12;
    /// @dev Largest amount, in minor units (the refunded total is stored on 96 bits).
    uint256 public constant AMOUNT_MINOR_MAX = type(uint96).max;
    /// @dev A value date may be at most this many days before the block's day (late recording).
    uint256 public constant VALUE_DATE_PAST_DAYS_MAX = 7;
    /// @dev A value date may be at most this many days after the block's day.
    uint256 public constant VALUE_DATE_FUTURE_DAYS_MAX = 366;

    uint256 private constant _STATE_MASK = 0xff;
    uint256 private constant _REFUNDED_SHIFT = 8;
    uint256 private constant _REFUNDED_MASK = (uint256(1) << 96) - 1;
    uint256 private constant _COMMITMENT_SHIFT = 104;
    uint256 private constant _COMMITMENT_MASK = ~((uint256(1) << _COMMITMENT_SHIFT) - 1);
    uint256 private constant _SECONDS_PER_DAY = 86_400;
    int256 private constant _NET_ABS_MAX = int256(SETTLEMENTS_PER_CYCLE_MAX * AMOUNT_MINOR_MAX);
    /// @dev Bytes of an ABI-encoded {Instruction}: 11 static words, indexed by the `_W_*` constants.
    uint256 private constant _INSTRUCTION_SIZE = 0x160;
    uint256 private constant _W_CLIENT_REFERENCE = 0;
    uint256 private constant _W_SOURCE_AMOUNT = 2;
    uint256 private constant _W_SOURCE_CURRENCY = 3;
    uint256 private constant _W_TARGET_AMOUNT = 4;
    uint256 private constant _W_TARGET_CURRENCY = 5;
    uint256 private constant _W_FX_RATE = 6;
    uint256 private constant _W_FEES = 7;
    uint256 private constant _W_VALUE_DATE = 8;
    uint256 private constant _W_PURPOSE = 9;

    struct NettingCycle {
        CycleState state;
        bytes3 currency;
        uint16 settlementCount;
        uint64 submittedAt;
        bytes32 settlementsHash; // keccak256(abi.encodePacked(settlement ids)), in submission order
        bytes32 netsHash; // keccak256(abi.encode(members, nets))
    }

    /// @dev Who is calling, resolved once per transaction.
    struct Caller {
        bytes32 member;
        bool operator;
        bool finance;
    }

    mapping(bytes32 id => uint256 packed) private _settlements;
    mapping(bytes32 cycleId => NettingCycle) private _cycles;

    constructor(IConsortiumRegistry registry_, address trustedForwarder_)
        ConsortiumGuarded(registry_, trustedForwarder_)
    {}

    // ------------------------------------------------------------------ record

    /**
     * @dev Records a settlement instruction from the caller's member to `ins.payee`; returns its id,
     * `keccak256(abi.encode(payerMemberId, ins.clientReference))`.
     *
     * Requirements:
     * - the caller is an account of an active member holding the FINANCE role (the payer);
     * - the id is new ({SettlementAlreadyExists}), the client reference non-zero;
     * - the payee is another, active member;
     * - amounts in 1..{AMOUNT_MINOR_MAX} (fees 0..), ISO 4217-shaped currencies;
     * - the FX rule of {Instruction} holds ({SettlementInconsistentFx});
     * - the value date is within [today - {VALUE_DATE_PAST_DAYS_MAX}, today + {VALUE_DATE_FUTURE_DAYS_MAX}]
     *   (today: the block's UTC day), the purpose code non-zero;
     * - a canonical ABI encoding ({SettlementMalformedInstruction}).
     *
     * Emits {SettlementRecorded}.
     */
    function recordSettlement(Instruction calldata ins) external returns (bytes32 id) {
        bytes32 payer = _requireRole(ROLE_FINANCE);
        _requireActivePayee(payer, ins.payee);
        return _record(payer, ins);
    }

    /**
     * @dev Records up to {BATCH_SIZE_MAX} instructions with the rules of {recordSettlement}; returns
     * their ids in order. All or nothing: any invalid item reverts the batch with its error.
     *
     * Emits one {SettlementRecorded} per instruction.
     */
    function recordBatch(Instruction[] calldata batch) external returns (bytes32[] memory ids) {
        _requireBatchSize(batch.length, BATCH_SIZE_MAX);
        bytes32 payer = _requireRole(ROLE_FINANCE);
        ids = new bytes32[](batch.length);
        bytes32 checkedPayee;
        for (uint256 i = 0; i < batch.length; ++i) {
            Instruction calldata ins = batch[i];
            // The registry cannot change within this transaction: check each distinct payee once in a run.
            if (ins.payee != checkedPayee) {
                _requireActivePayee(payer, ins.payee);
                checkedPayee = ins.payee;
            }
            ids[i] = _record(payer, ins);
        }
    }

    // ------------------------------------------------------------------ pay, cancel, refund

    /**
     * @dev Marks settlement `s` paid with the provider's `evidence`.
     *
     * Requirements:
     * - the caller is an active member with the OPERATOR role (relaying a verified provider
     *   callback), or an account of the payee holding FINANCE;
     * - `s` is the recorded settlement and is `Instructed`;
     * - the evidence names a provider and a transaction hash, and shows exactly the target amount
     *   ({SettlementPaidAmountMismatch}: short or over-payments are reconciled off chain).
     *
     * Emits {SettlementPaid}.
     */
    function markPaid(Settlement calldata s, PaymentEvidence calldata evidence) external {
        _markPaid(_caller(), s, evidence);
    }

    /**
     * @dev Marks up to {BATCH_SIZE_MAX} settlements paid, `evidence[i]` for `settlements[i]`, with the
     * rules of {markPaid}. All or nothing.
     *
     * Emits one {SettlementPaid} per settlement.
     */
    function markPaidBatch(Settlement[] calldata settlements, PaymentEvidence[] calldata evidence) external {
        _requireBatchSize(settlements.length, BATCH_SIZE_MAX);
        if (settlements.length != evidence.length) {
            revert SettlementLengthMismatch(settlements.length, evidence.length);
        }
        Caller memory caller = _caller();
        for (uint256 i = 0; i < settlements.length; ++i) {
            _markPaid(caller, settlements[i], evidence[i]);
        }
    }

    /**
     * @dev Cancels settlement `s` before it is paid.
     *
     * Requirements: the caller is an account of the payer holding FINANCE (active); `s` is the
     * recorded settlement and is `Instructed`.
     *
     * Emits {SettlementCancelled}.
     */
    function cancelSettlement(Settlement calldata s) external {
        bytes32 member = _requireRole(ROLE_FINANCE);
        (bytes32 id, uint256 packed) = _load(s);
        if (member != s.payer) revert SettlementUnauthorized(id, _msgSender(), member);
        _requireState(id, packed, State.Instructed);
        _settlements[id] = _withState(packed, State.Cancelled);
        emit SettlementCancelled(id);
    }

    /**
     * @dev Refunds `amountMinor` (target currency) of settlement `s`; `refundRefHash` is the hash of
     * the refund's reference at the provider. A partial refund keeps the state and raises the
     * refunded total; the refund that brings it to the amount paid makes the state `Refunded`.
     *
     * Requirements:
     * - the caller is an active member with the OPERATOR role, or an account of the payee holding FINANCE;
     * - `s` is the recorded settlement and is `Paid` or `Settled` (not while in a netting cycle);
     * - `0 < amountMinor` and refunded total + `amountMinor` <= the amount paid.
     *
     * Emits {SettlementRefunded}.
     */
    function refund(Settlement calldata s, uint128 amountMinor, bytes32 refundRefHash) external {
        Caller memory caller = _caller();
        (bytes32 id, uint256 packed) = _load(s);
        _authorizePayeeOrOperator(caller, id, s.instruction.payee);
        State state = State(packed & _STATE_MASK);
        if (state != State.Paid && state != State.Settled) revert SettlementInvalidState(id, state);
        uint256 paid = s.instruction.targetAmountMinor;
        uint256 refunded = (packed >> _REFUNDED_SHIFT) & _REFUNDED_MASK;
        if (amountMinor == 0 || refunded + amountMinor > paid) {
            revert SettlementRefundExceedsPaid(id, amountMinor, refunded, paid);
        }
        refunded += amountMinor;
        bool fully = refunded == paid;
        packed = (packed & ~(_REFUNDED_MASK << _REFUNDED_SHIFT)) | (refunded << _REFUNDED_SHIFT);
        _settlements[id] = fully ? _withState(packed, State.Refunded) : packed;
        emit SettlementRefunded(id, amountMinor, uint128(refunded), refundRefHash, fully);
    }

    // ------------------------------------------------------------------ netting

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
     * - 1..{SETTLEMENTS_PER_CYCLE_MAX} settlements, each recorded, `Paid`, with target currency `currency`;
     * - 1..{MEMBERS_PER_CYCLE_MAX} members, strictly ascending, including every payer and payee;
     * - `nets` within +-{SETTLEMENTS_PER_CYCLE_MAX} * {AMOUNT_MINOR_MAX}, summing to zero, equal to the
     *   recomputed nets (a listed member without settlements has net zero).
     *
     * Emits one {SettlementNetted} per settlement, then {NettingCycleSubmitted}.
     */
    function submitNettingCycle(
        bytes32 cycleId,
        bytes3 currency,
        Settlement[] calldata settlements,
        bytes32[] calldata members,
        int256[] calldata nets
    ) external {
        _requireRole(ROLE_OPERATOR);
        if (cycleId == bytes32(0) || _cycles[cycleId].state != CycleState.None) revert SettlementCycleExists(cycleId);
        _checkCurrency(currency);
        _requireBatchSize(settlements.length, SETTLEMENTS_PER_CYCLE_MAX);
        _requireBatchSize(members.length, MEMBERS_PER_CYCLE_MAX);
        if (members.length != nets.length) revert SettlementLengthMismatch(members.length, nets.length);
        _checkMembersAndSum(members, nets);

        int256[] memory computed = new int256[](members.length);
        bytes32[] memory ids = new bytes32[](settlements.length);
        for (uint256 i = 0; i < settlements.length; ++i) {
            ids[i] = _net(cycleId, currency, settlements[i], members, computed);
        }
        for (uint256 k = 0; k < members.length; ++k) {
            if (computed[k] != nets[k]) revert SettlementCycleNetMismatch(members[k], nets[k], computed[k]);
        }

        _cycles[cycleId] = NettingCycle({
            state: CycleState.Submitted,
            currency: currency,
            settlementCount: uint16(settlements.length),
            submittedAt: uint64(block.timestamp),
            settlementsHash: keccak256(abi.encodePacked(ids)),
            netsHash: keccak256(abi.encode(members, nets))
        });
        emit NettingCycleSubmitted(cycleId, currency, settlements.length, members, nets);
    }

    /**
     * @dev Settles submitted netting cycle `cycleId` (the members paid their nets): each of its
     * settlements, `settlementIds` in submission order, becomes `Settled`.
     *
     * Requirements: the caller is an active member with the OPERATOR role; the cycle is `Submitted`;
     * `settlementIds` are exactly the cycle's, in order ({SettlementCycleSettlementsMismatch}).
     *
     * Emits one {SettlementSettled} per settlement, then {NettingCycleSettled}.
     */
    function settleNettingCycle(bytes32 cycleId, bytes32[] calldata settlementIds) external {
        _closeCycle(cycleId, settlementIds, CycleState.Settled, State.Settled);
        emit NettingCycleSettled(cycleId);
    }

    /**
     * @dev Cancels submitted netting cycle `cycleId`: its settlements are `Paid` again and may be
     * netted in another cycle (or refunded).
     *
     * Requirements: as {settleNettingCycle}.
     *
     * Emits one {SettlementReleased} per settlement, then {NettingCycleCancelled}.
     */
    function cancelNettingCycle(bytes32 cycleId, bytes32[] calldata settlementIds) external {
        _closeCycle(cycleId, settlementIds, CycleState.Cancelled, State.Paid);
        emit NettingCycleCancelled(cycleId);
    }

    // ------------------------------------------------------------------ views

    /// @dev The id of the settlement recorded by member `payer` under `clientReference`.
    function settlementIdOf(bytes32 payer, bytes32 clientReference) public pure returns (bytes32 id) {
        // keccak256(abi.encode(payer, clientReference)), hashed in the scratch space.
        assembly ("memory-safe") {
            mstore(0x00, payer)
            mstore(0x20, clientReference)
            id := keccak256(0x00, 0x40)
        }
    }

    /// @dev The full commitment to `s`, `keccak256(abi.encode(s))`; storage keeps its top 152 bits.
    function commitmentOf(Settlement calldata s) public pure returns (bytes32) {
        return keccak256(abi.encode(s));
    }

    /// @dev Settlement `id`: state, refunded total (target minor units) and stored commitment bits.
    function getSettlement(bytes32 id)
        external
        view
        returns (State state, uint128 refundedTotalMinor, bytes19 commitment)
    {
        uint256 packed = _settlements[id];
        return (
            State(packed & _STATE_MASK),
            uint128((packed >> _REFUNDED_SHIFT) & _REFUNDED_MASK),
            bytes19(bytes32(packed & _COMMITMENT_MASK))
        );
    }

    /// @dev Whether `s` is exactly a recorded settlement (for auditors and the service's follower).
    function isRecorded(Settlement calldata s) external view returns (bool) {
        uint256 packed = _settlements[settlementIdOf(s.payer, s.instruction.clientReference)];
        return packed != 0 && (packed & _COMMITMENT_MASK) == (uint256(commitmentOf(s)) & _COMMITMENT_MASK);
    }

    /// @dev Netting cycle `cycleId`.
    function getNettingCycle(bytes32 cycleId) external view returns (NettingCycle memory) {
        return _cycles[cycleId];
    }

    // ------------------------------------------------------------------ internals

    function _record(bytes32 payer, Instruction calldata ins) private returns (bytes32 id) {
        _checkInstruction(ins);
        id = settlementIdOf(payer, bytes32(_word(ins, _W_CLIENT_REFERENCE)));
        if (_settlements[id] != 0) revert SettlementAlreadyExists(id);
        _settlements[id] = (_commitmentOf(payer, ins) & _COMMITMENT_MASK) | uint256(State.Instructed);
        _emitRecorded(id, payer, ins);
    }

    /**
     * @dev keccak256(abi.encode(Settlement(payer, ins))), hashed straight from calldata: the
     * instruction is a static struct, so its ABI encoding is its 11 calldata words (checked clean by
     * {_checkInstruction} when recorded; unclean words later simply do not match).
     */
    function _commitmentOf(bytes32 payer, Instruction calldata ins) private pure returns (uint256 commitment) {
        assembly ("memory-safe") {
            let ptr := mload(0x40) // scratch past the free memory pointer; nothing is allocated
            mstore(ptr, payer)
            calldatacopy(add(ptr, 0x20), ins, _INSTRUCTION_SIZE)
            commitment := keccak256(ptr, add(0x20, _INSTRUCTION_SIZE))
        }
    }

    /// @dev `emit SettlementRecorded(id, payer, ins.payee, ins)`, with the data copied straight from calldata.
    function _emitRecorded(bytes32 id, bytes32 payer, Instruction calldata ins) private {
        bytes32 topic = SettlementRecorded.selector;
        bytes32 payee = ins.payee;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            calldatacopy(ptr, ins, _INSTRUCTION_SIZE)
            log4(ptr, _INSTRUCTION_SIZE, topic, id, payer, payee)
        }
    }

    function _markPaid(Caller memory caller, Settlement calldata s, PaymentEvidence calldata evidence) private {
        (bytes32 id, uint256 packed) = _load(s);
        _authorizePayeeOrOperator(caller, id, s.instruction.payee);
        _requireState(id, packed, State.Instructed);
        if (evidence.provider == bytes16(0) || evidence.providerTxHash == bytes32(0)) {
            revert SettlementInvalidEvidence(id);
        }
        if (evidence.amountPaidMinor != s.instruction.targetAmountMinor) {
            revert SettlementPaidAmountMismatch(id, evidence.amountPaidMinor, s.instruction.targetAmountMinor);
        }
        _settlements[id] = _withState(packed, State.Paid);
        emit SettlementPaid(id, evidence.provider, evidence.providerTxHash, evidence.amountPaidMinor);
    }

    /// @dev Moves one `Paid` settlement into cycle `cycleId` and adds its flows to `computed`.
    function _net(
        bytes32 cycleId,
        bytes3 currency,
        Settlement calldata s,
        bytes32[] calldata members,
        int256[] memory computed
    ) private returns (bytes32 id) {
        uint256 packed;
        (id, packed) = _load(s);
        _requireState(id, packed, State.Paid);
        if (s.instruction.targetCurrency != currency) {
            revert SettlementCycleCurrencyMismatch(id, s.instruction.targetCurrency);
        }
        uint256 outstanding = uint256(s.instruction.targetAmountMinor) - ((packed >> _REFUNDED_SHIFT) & _REFUNDED_MASK);
        // Both bounded by AMOUNT_MINOR_MAX (2^96), so the casts and the sums of <= 200 items are exact.
        computed[_indexOf(id, members, s.instruction.payee)] += int256(outstanding);
        computed[_indexOf(id, members, s.payer)] -= int256(outstanding);
        _settlements[id] = _withState(packed, State.InCycle);
        emit SettlementNetted(id, cycleId, uint128(outstanding));
    }

    function _closeCycle(bytes32 cycleId, bytes32[] calldata settlementIds, CycleState to, State settlementTo)
        private
    {
        _requireRole(ROLE_OPERATOR);
        NettingCycle storage cycle = _cycles[cycleId];
        if (cycle.state != CycleState.Submitted) revert SettlementCycleInvalidState(cycleId, cycle.state);
        if (keccak256(abi.encodePacked(settlementIds)) != cycle.settlementsHash) {
            revert SettlementCycleSettlementsMismatch(cycleId);
        }
        cycle.state = to;
        for (uint256 i = 0; i < settlementIds.length; ++i) {
            bytes32 id = settlementIds[i];
            uint256 packed = _settlements[id];
            // Invariant: a settlement of a submitted cycle stays InCycle until the cycle closes.
            _requireState(id, packed, State.InCycle);
            _settlements[id] = _withState(packed, settlementTo);
            if (settlementTo == State.Settled) {
                emit SettlementSettled(id, cycleId);
            } else {
                emit SettlementReleased(id, cycleId);
            }
        }
    }

    /// @dev The id of `s` and its storage word; reverts unless `s` is exactly what was recorded.
    function _load(Settlement calldata s) private view returns (bytes32 id, uint256 packed) {
        id = settlementIdOf(s.payer, s.instruction.clientReference);
        packed = _settlements[id];
        if (packed == 0) revert SettlementNotFound(id);
        if ((packed & _COMMITMENT_MASK) != (_commitmentOf(s.payer, s.instruction) & _COMMITMENT_MASK)) {
            revert SettlementDetailsMismatch(id);
        }
    }

    function _caller() private view returns (Caller memory c) {
        c.member = _requireMember();
        c.operator = registry.isActiveWithRole(_msgSender(), ROLE_OPERATOR);
        c.finance = registry.isActiveWithRole(_msgSender(), ROLE_FINANCE);
    }

    function _authorizePayeeOrOperator(Caller memory caller, bytes32 id, bytes32 payee) private view {
        if (caller.operator || (caller.finance && caller.member == payee)) return;
        revert SettlementUnauthorized(id, _msgSender(), caller.member);
    }

    function _requireActivePayee(bytes32 payer, bytes32 payee) private view {
        if (payee == payer) revert SettlementSelfPayment(payer);
        if (!registry.isActive(payee)) revert SettlementPayeeNotActive(payee);
    }

    /**
     * @dev Checks an instruction from its raw calldata words (cheaper than field access, which
     * matters at 200 per batch). Since the commitment and the event are copied from calldata, it
     * also enforces the ABI decoder's rule that no bits lie outside a field's type.
     */
    function _checkInstruction(Instruction calldata ins) private view {
        if (
            (_word(ins, _W_SOURCE_CURRENCY) | _word(ins, _W_TARGET_CURRENCY)) << 24 | _word(ins, _W_PURPOSE) << 32
                | _word(ins, _W_FX_RATE) >> 64 | _word(ins, _W_VALUE_DATE) >> 32 != 0
        ) revert SettlementMalformedInstruction();
        if (_word(ins, _W_CLIENT_REFERENCE) == 0) revert SettlementInvalidReference();
        if (_word(ins, _W_PURPOSE) == 0) revert SettlementInvalidPurposeCode();
        uint256 source = _word(ins, _W_SOURCE_AMOUNT);
        uint256 target = _word(ins, _W_TARGET_AMOUNT);
        if (source == 0 || source > AMOUNT_MINOR_MAX) revert SettlementInvalidAmount(source);
        if (target == 0 || target > AMOUNT_MINOR_MAX) revert SettlementInvalidAmount(target);
        if (_word(ins, _W_FEES) > AMOUNT_MINOR_MAX) revert SettlementInvalidAmount(_word(ins, _W_FEES));
        uint256 sourceCurrency = _word(ins, _W_SOURCE_CURRENCY);
        uint256 targetCurrency = _word(ins, _W_TARGET_CURRENCY);
        _checkCurrency(bytes3(bytes32(sourceCurrency)));
        _checkCurrency(bytes3(bytes32(targetCurrency)));
        _checkFx(source, sourceCurrency == targetCurrency, uint64(_word(ins, _W_FX_RATE)), target);
        uint256 today = block.timestamp / _SECONDS_PER_DAY;
        uint256 earliest = today > VALUE_DATE_PAST_DAYS_MAX ? today - VALUE_DATE_PAST_DAYS_MAX : 0;
        uint256 latest = today + VALUE_DATE_FUTURE_DAYS_MAX;
        uint256 valueDate = _word(ins, _W_VALUE_DATE);
        if (valueDate < earliest || valueDate > latest) {
            revert SettlementInvalidValueDate(uint32(valueDate), earliest, latest);
        }
    }

    /// @dev The `index`-th 32-byte word of `ins`'s ABI encoding (see the `_W_*` constants).
    function _word(Instruction calldata ins, uint256 index) private pure returns (uint256 word) {
        assembly ("memory-safe") {
            word := calldataload(add(ins, shl(5, index)))
        }
    }

    /// @dev The FX rule of {Instruction}: target == round_half_up(source * rate / FX_RATE_SCALE).
    function _checkFx(uint256 source, bool sameCurrency, uint64 rate, uint256 target) private pure {
        // source < 2^96 and rate < 2^64: the product cannot overflow.
        uint256 expected = (source * rate + FX_RATE_SCALE / 2) / FX_RATE_SCALE;
        bool rateValid = rate != 0 && (!sameCurrency || rate == FX_RATE_SCALE);
        if (!rateValid || expected != target) revert SettlementInconsistentFx(source, rate, target, expected);
    }

    /// @dev Reverts unless the three bytes of `currency` are upper-case ASCII letters (A-Z).
    function _checkCurrency(bytes3 currency) private pure {
        uint256 c = uint24(currency);
        // Per byte b < 0x80: (b | 0x80) - 0x41 keeps its top bit iff b >= 0x41 ('A'), and
        // (b | 0x80) - 0x5b keeps it iff b >= 0x5b (past 'Z'); no borrow crosses bytes.
        uint256 tops = 0x808080;
        bool valid = c & tops == 0 && ((c | tops) - 0x414141) & tops == tops && ((c | tops) - 0x5b5b5b) & tops == 0;
        if (!valid) revert SettlementInvalidCurrency(currency);
    }

    function _checkMembersAndSum(bytes32[] calldata members, int256[] calldata nets) private pure {
        int256 sum = 0;
        bytes32 previous = bytes32(0);
        for (uint256 k = 0; k < members.length; ++k) {
            if (members[k] <= previous) revert SettlementCycleMembersNotSorted(k);
            previous = members[k];
            // No real net exceeds every settlement's largest amount; the bound also keeps the sum exact.
            if (nets[k] > _NET_ABS_MAX || nets[k] < -_NET_ABS_MAX) {
                revert SettlementCycleNetOutOfRange(members[k], nets[k]);
            }
            sum += nets[k];
        }
        if (sum != 0) revert SettlementCycleNetsNotZeroSum(sum);
    }

    /// @dev Binary search of `member` in the strictly ascending `members`.
    function _indexOf(bytes32 id, bytes32[] calldata members, bytes32 member) private pure returns (uint256) {
        uint256 low = 0;
        uint256 high = members.length;
        while (low < high) {
            uint256 mid = (low + high) / 2;
            bytes32 m = members[mid];
            if (m == member) return mid;
            if (m < member) low = mid + 1;
            else high = mid;
        }
        revert SettlementCycleMemberMissing(id, member);
    }

    function _requireState(bytes32 id, uint256 packed, State expected) private pure {
        State current = State(packed & _STATE_MASK);
        if (current != expected) revert SettlementInvalidState(id, current);
    }

    function _requireBatchSize(uint256 length, uint256 max) private pure {
        if (length == 0 || length > max) revert SettlementBatchSize(length, max);
    }

    function _withState(uint256 packed, State state) private pure returns (uint256) {
        return (packed & ~_STATE_MASK) | uint256(state);
    }
}
