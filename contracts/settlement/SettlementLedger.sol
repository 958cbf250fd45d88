// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ConsortiumGuarded} from "../registry/ConsortiumGuarded.sol";
import {IConsortiumRegistry} from "../registry/IConsortiumRegistry.sol";
import {ISettlementLedger} from "./ISettlementLedger.sol";

/**
 * @dev The settlement ledger: members record settlements, providers' evidence attested by the
 * operator marks them paid, payees refund them (or the operator attests a provider's refund), and
 * the operator nets paid settlements per currency in cycles that settle once every net payer's
 * payment in is attested. Every transition checks, on chain, who may make it (through the
 * {IConsortiumRegistry}); no money-moving transition rests on one party's word about itself.
 *
 * Storage: ONE word per settlement, written once when recorded (the only fresh slot on the record
 * path) and updated in place afterwards:
 *
 * ```
 *  bit 255                                      104 103                  8   7     6    0
 *  | commitment: top 152 bits of keccak256(details) | refunded total (uint96) | ack | state |
 * ```
 *
 * - `state` is a {State}; `ack` is set once the payee acknowledged its receipt.
 * - `refunded total` is the sum of refunds in the target currency's minor units; it never exceeds
 *   the amount paid, which equals the target amount (see {markPaid}).
 * - `commitment` is the top 152 bits of `keccak256(abi.encode(settlement))` for the
 *   {Settlement} `(payer, instruction)`; a forgery needs a 152-bit (second) preimage, a
 *   self-made collision 2^76 work, and any mismatch with the {SettlementRecorded} event is public.
 *
 * Amounts are `uint128` in the ABI but bounded by {AMOUNT_MINOR_MAX} (2^96 - 1, about 7.9e28
 * minor units) so that the refunded total fits its 96 bits.
 *
 * Beside it: spent provider evidence (one word per payment, refund or net payment), refund
 * references per settlement, and per cycle the attested net payments.
 *
 * Batches and cycles are all-or-nothing: one invalid item reverts the whole transaction, with the
 * item's own error (the service validates before it submits).
 */
contract SettlementLedger is ConsortiumGuarded, ISettlementLedger {
    /// @inheritdoc ISettlementLedger
    uint256 public constant BATCH_SIZE_MAX = 200;
    /// @inheritdoc ISettlementLedger
    uint256 public constant SETTLEMENTS_PER_CYCLE_MAX = 200;
    /// @inheritdoc ISettlementLedger
    uint256 public constant MEMBERS_PER_CYCLE_MAX = 64;
    /// @inheritdoc ISettlementLedger
    uint256 public constant FX_RATE_SCALE = 1e12;
    /// @inheritdoc ISettlementLedger
    uint256 public constant AMOUNT_MINOR_MAX = type(uint96).max;
    /// @inheritdoc ISettlementLedger
    uint256 public constant VALUE_DATE_PAST_DAYS_MAX = 7;
    /// @inheritdoc ISettlementLedger
    uint256 public constant VALUE_DATE_FUTURE_DAYS_MAX = 366;

    uint256 private constant _STATE_MASK = 0x7f;
    uint256 private constant _ACK_BIT = 0x80;
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

    mapping(bytes32 id => uint256 packed) private _settlements;
    mapping(bytes32 cycleId => NettingCycle) private _cycles;
    /// @dev keccak256(abi.encode(isRefund, provider, providerTxHash)) => the settlement or cycle it evidenced.
    mapping(bytes32 evidenceKey => bytes32 usedBy) private _evidence;
    /// @dev keccak256(abi.encode(settlementId, refundRefHash)) => used.
    mapping(bytes32 refundKey => bool) private _refundRefs;
    /// @dev keccak256(abi.encode(cycleId, member)) => the member's net payment is attested.
    mapping(bytes32 netPaymentKey => bool) private _netPaid;

    constructor(IConsortiumRegistry registry_, address trustedForwarder_)
        ConsortiumGuarded(registry_, trustedForwarder_)
    {}

    // ------------------------------------------------------------------ record

    /// @inheritdoc ISettlementLedger
    function recordSettlement(Instruction calldata ins) external returns (bytes32 id) {
        bytes32 payer = _requireRole(ROLE_FINANCE);
        _requireActivePayee(payer, ins.payee);
        return _record(payer, ins);
    }

    /// @inheritdoc ISettlementLedger
    function recordBatch(Instruction[] calldata batch) external returns (bytes32[] memory ids) {
        _requireBatchSize(batch.length, BATCH_SIZE_MAX);
        bytes32 payer = _requireRole(ROLE_FINANCE);
        ids = new bytes32[](batch.length);
        bytes32 checkedPayee;
        for (uint256 i = 0; i < batch.length; ++i) {
            Instruction calldata ins = batch[i];
            // The registry cannot change within this transaction: check each distinct payee once in a
            // run. The first item is always checked, so payee 0 (no member) is refused as in a single record.
            if (i == 0 || ins.payee != checkedPayee) {
                _requireActivePayee(payer, ins.payee);
                checkedPayee = ins.payee;
            }
            ids[i] = _record(payer, ins);
        }
    }

    // ------------------------------------------------------------------ pay, acknowledge, cancel, refund

    /// @inheritdoc ISettlementLedger
    function markPaid(Settlement calldata s, PaymentEvidence calldata evidence) external {
        _markPaid(_attestor(), s, evidence);
    }

    /// @inheritdoc ISettlementLedger
    function markPaidBatch(Settlement[] calldata settlements, PaymentEvidence[] calldata evidence) external {
        _requireBatchSize(settlements.length, BATCH_SIZE_MAX);
        if (settlements.length != evidence.length) {
            revert SettlementLengthMismatch(settlements.length, evidence.length);
        }
        bytes32 attestor = _attestor();
        for (uint256 i = 0; i < settlements.length; ++i) {
            _markPaid(attestor, settlements[i], evidence[i]);
        }
    }

    /// @inheritdoc ISettlementLedger
    function acknowledgeReceipt(Settlement calldata s) external {
        bytes32 member = _requireRole(ROLE_FINANCE);
        (bytes32 id, uint256 packed) = _load(s);
        if (member != s.instruction.payee) revert SettlementUnauthorized(id, _msgSender(), member);
        State state = State(packed & _STATE_MASK);
        if (state != State.Instructed && state != State.Paid) revert SettlementInvalidState(id, state);
        if (packed & _ACK_BIT != 0) revert SettlementAlreadyAcknowledged(id);
        _settlements[id] = packed | _ACK_BIT;
        emit SettlementReceiptAcknowledged(id, member);
    }

    /// @inheritdoc ISettlementLedger
    function cancelSettlement(Settlement calldata s) external {
        bytes32 member = _requireRole(ROLE_FINANCE);
        (bytes32 id, uint256 packed) = _load(s);
        if (member != s.payer) revert SettlementUnauthorized(id, _msgSender(), member);
        _requireState(id, packed, State.Instructed);
        _settlements[id] = _withState(packed, State.Cancelled);
        emit SettlementCancelled(id);
    }

    /// @inheritdoc ISettlementLedger
    function refund(Settlement calldata s, uint128 amountMinor, bytes32 refundRefHash) external {
        // The party returning the money: the payee. The operator alone cannot refund (see attestRefund).
        bytes32 member = _requireRole(ROLE_FINANCE);
        (bytes32 id, uint256 packed) = _load(s);
        if (member != s.instruction.payee) revert SettlementUnauthorized(id, _msgSender(), member);
        _requireActive(id, s.payer);
        _refund(id, packed, s, amountMinor, refundRefHash);
    }

    /// @inheritdoc ISettlementLedger
    function attestRefund(Settlement calldata s, bytes32 refundRefHash, PaymentEvidence calldata evidence) external {
        bytes32 attestor = _attestor();
        (bytes32 id, uint256 packed) = _load(s);
        _requireAttestorForSettlement(attestor, id, s);
        _spendEvidence(id, evidence, true);
        emit SettlementRefundAttested(id, evidence.provider, evidence.providerTxHash, attestor);
        _refund(id, packed, s, evidence.amountPaidMinor, refundRefHash);
    }

    // ------------------------------------------------------------------ netting

    /// @inheritdoc ISettlementLedger
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
        uint256 netPayers = _checkMembersAndSum(members, nets);
        // Every party of every settlement is listed (checked by _net), so this covers them all.
        _requireAllActive(cycleId, members);

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
            netPayerCount: uint16(netPayers),
            netPaymentsAttested: 0,
            settlementsHash: keccak256(abi.encodePacked(ids)),
            netsHash: keccak256(abi.encode(members, nets))
        });
        emit NettingCycleSubmitted(cycleId, currency, settlements.length, members, nets);
    }

    /// @inheritdoc ISettlementLedger
    function attestNetPayment(
        bytes32 cycleId,
        bytes32[] calldata members,
        int256[] calldata nets,
        bytes32 member,
        PaymentEvidence calldata evidence
    ) external {
        bytes32 attestor = _attestor();
        if (attestor == member) revert SettlementAttestorIsParty(cycleId, attestor);
        NettingCycle storage cycle = _submittedCycle(cycleId, members, nets);
        int256 net = nets[_indexOf(cycleId, members, member)];
        if (net >= 0) revert SettlementCycleNotNetPayer(cycleId, member, net);
        _requireActive(cycleId, member);
        bytes32 key = keccak256(abi.encode(cycleId, member));
        if (_netPaid[key]) revert SettlementCycleNetPaymentAttested(cycleId, member);
        // -net <= _NET_ABS_MAX < 2^128: exact.
        if (uint256(-net) != evidence.amountPaidMinor) {
            revert SettlementPaidAmountMismatch(cycleId, evidence.amountPaidMinor, uint256(-net));
        }
        _spendEvidence(cycleId, evidence, false);
        _netPaid[key] = true;
        cycle.netPaymentsAttested += 1;
        emit NetPaymentAttested(
            cycleId, member, evidence.provider, evidence.providerTxHash, evidence.amountPaidMinor, attestor
        );
    }

    /// @inheritdoc ISettlementLedger
    function settleNettingCycle(
        bytes32 cycleId,
        bytes32[] calldata settlementIds,
        bytes32[] calldata members,
        int256[] calldata nets
    ) external {
        _requireRole(ROLE_OPERATOR);
        NettingCycle storage cycle = _submittedCycle(cycleId, members, nets);
        _requireAllActive(cycleId, members);
        if (cycle.netPaymentsAttested != cycle.netPayerCount) {
            revert SettlementCycleNetPaymentsMissing(cycleId, cycle.netPaymentsAttested, cycle.netPayerCount);
        }
        _closeCycle(cycleId, settlementIds, CycleState.Settled, State.Settled);
        emit NettingCycleSettled(cycleId);
    }

    /// @inheritdoc ISettlementLedger
    function cancelNettingCycle(bytes32 cycleId, bytes32[] calldata settlementIds) external {
        _requireRole(ROLE_OPERATOR);
        _closeCycle(cycleId, settlementIds, CycleState.Cancelled, State.Paid);
        emit NettingCycleCancelled(cycleId);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc ISettlementLedger
    function settlementIdOf(bytes32 payer, bytes32 clientReference) public pure returns (bytes32 id) {
        // keccak256(abi.encode(payer, clientReference)), hashed in the scratch space.
        assembly ("memory-safe") {
            mstore(0x00, payer)
            mstore(0x20, clientReference)
            id := keccak256(0x00, 0x40)
        }
    }

    /// @inheritdoc ISettlementLedger
    function commitmentOf(Settlement calldata s) public pure returns (bytes32) {
        return keccak256(abi.encode(s));
    }

    /// @inheritdoc ISettlementLedger
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

    /// @inheritdoc ISettlementLedger
    function isAcknowledged(bytes32 id) external view returns (bool) {
        return _settlements[id] & _ACK_BIT != 0;
    }

    /// @inheritdoc ISettlementLedger
    function isRecorded(Settlement calldata s) external view returns (bool) {
        uint256 packed = _settlements[settlementIdOf(s.payer, s.instruction.clientReference)];
        return packed != 0 && (packed & _COMMITMENT_MASK) == (uint256(commitmentOf(s)) & _COMMITMENT_MASK);
    }

    /// @inheritdoc ISettlementLedger
    function getNettingCycle(bytes32 cycleId) external view returns (NettingCycle memory) {
        return _cycles[cycleId];
    }

    /// @inheritdoc ISettlementLedger
    function isNetPaymentAttested(bytes32 cycleId, bytes32 member) external view returns (bool) {
        return _netPaid[keccak256(abi.encode(cycleId, member))];
    }

    /// @inheritdoc ISettlementLedger
    function evidenceUsedBy(bytes16 provider, bytes32 providerTxHash, bool isRefund)
        external
        view
        returns (bytes32 usedBy)
    {
        return _evidence[keccak256(abi.encode(isRefund, provider, providerTxHash))];
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

    function _markPaid(bytes32 attestor, Settlement calldata s, PaymentEvidence calldata evidence) private {
        (bytes32 id, uint256 packed) = _load(s);
        _requireAttestorForSettlement(attestor, id, s);
        _requireState(id, packed, State.Instructed);
        _requireValueDateReached(id, s.instruction.valueDate, block.timestamp / _SECONDS_PER_DAY);
        if (evidence.amountPaidMinor != s.instruction.targetAmountMinor) {
            revert SettlementPaidAmountMismatch(id, evidence.amountPaidMinor, s.instruction.targetAmountMinor);
        }
        _spendEvidence(id, evidence, false);
        _settlements[id] = _withState(packed, State.Paid);
        emit SettlementPaid(id, evidence.provider, evidence.providerTxHash, evidence.amountPaidMinor, attestor);
    }

    /// @dev Refunds `amountMinor` of settlement `id` (loaded as `packed`) under reference `refundRefHash`.
    function _refund(bytes32 id, uint256 packed, Settlement calldata s, uint256 amountMinor, bytes32 refundRefHash)
        private
    {
        State state = State(packed & _STATE_MASK);
        if (state != State.Paid && state != State.Settled) revert SettlementInvalidState(id, state);
        if (refundRefHash == bytes32(0)) revert SettlementInvalidRefundReference(id);
        bytes32 refKey = keccak256(abi.encode(id, refundRefHash));
        if (_refundRefs[refKey]) revert SettlementRefundReferenceUsed(id, refundRefHash);
        uint256 paid = s.instruction.targetAmountMinor;
        uint256 refunded = (packed >> _REFUNDED_SHIFT) & _REFUNDED_MASK;
        if (amountMinor == 0 || refunded + amountMinor > paid) {
            revert SettlementRefundExceedsPaid(id, amountMinor, refunded, paid);
        }
        _refundRefs[refKey] = true;
        refunded += amountMinor;
        bool fully = refunded == paid;
        packed = (packed & ~(_REFUNDED_MASK << _REFUNDED_SHIFT)) | (refunded << _REFUNDED_SHIFT);
        _settlements[id] = fully ? _withState(packed, State.Refunded) : packed;
        // amountMinor <= paid <= AMOUNT_MINOR_MAX: the casts are exact.
        emit SettlementRefunded(id, uint128(amountMinor), uint128(refunded), refundRefHash, fully);
    }

    /**
     * @dev Spends provider evidence for `subject`: non-empty, and never used before in its namespace
     * (payments and net payments share one; refunds have their own).
     */
    function _spendEvidence(bytes32 subject, PaymentEvidence calldata evidence, bool isRefund) private {
        if (evidence.provider == bytes16(0) || evidence.providerTxHash == bytes32(0)) {
            revert SettlementInvalidEvidence(subject);
        }
        bytes32 key = keccak256(abi.encode(isRefund, evidence.provider, evidence.providerTxHash));
        bytes32 usedBy = _evidence[key];
        if (usedBy != bytes32(0)) revert SettlementEvidenceUsed(evidence.provider, evidence.providerTxHash, usedBy);
        _evidence[key] = subject;
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
        // Paid implies its value date had come (markPaid checks it), so none is netted before it.
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

    /// @dev The attestor's member id: the caller, an active member with the OPERATOR role.
    function _attestor() private view returns (bytes32) {
        return _requireRole(ROLE_OPERATOR);
    }

    /// @dev The attestor is neither party of `s`, and both parties are active.
    function _requireAttestorForSettlement(bytes32 attestor, bytes32 id, Settlement calldata s) private view {
        if (attestor == s.payer || attestor == s.instruction.payee) revert SettlementAttestorIsParty(id, attestor);
        _requireActive(id, s.payer);
        _requireActive(id, s.instruction.payee);
    }

    function _requireActive(bytes32 subject, bytes32 member) private view {
        if (!registry.isActive(member)) revert SettlementPartyNotActive(subject, member);
    }

    function _requireAllActive(bytes32 cycleId, bytes32[] calldata members) private view {
        for (uint256 k = 0; k < members.length; ++k) {
            _requireActive(cycleId, members[k]);
        }
    }

    /// @dev The `Submitted` cycle `cycleId`, whose members and nets are `members` and `nets`.
    function _submittedCycle(bytes32 cycleId, bytes32[] calldata members, int256[] calldata nets)
        private
        view
        returns (NettingCycle storage cycle)
    {
        cycle = _cycles[cycleId];
        if (cycle.state != CycleState.Submitted) revert SettlementCycleInvalidState(cycleId, cycle.state);
        if (keccak256(abi.encode(members, nets)) != cycle.netsHash) revert SettlementCycleNetsMismatch(cycleId);
    }

    function _requireValueDateReached(bytes32 id, uint32 valueDate, uint256 today) private pure {
        if (valueDate > today) revert SettlementValueDateNotReached(id, valueDate, today);
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

    /// @dev Checks the member list and the nets' sum; returns how many members have a negative net.
    function _checkMembersAndSum(bytes32[] calldata members, int256[] calldata nets)
        private
        pure
        returns (uint256 netPayers)
    {
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
            if (nets[k] < 0) ++netPayers;
        }
        if (sum != 0) revert SettlementCycleNetsNotZeroSum(sum);
    }

    /// @dev Binary search of `member` in the strictly ascending `members`.
    function _indexOf(bytes32 subject, bytes32[] calldata members, bytes32 member) private pure returns (uint256) {
        uint256 low = 0;
        uint256 high = members.length;
        while (low < high) {
            uint256 mid = (low + high) / 2;
            bytes32 m = members[mid];
            if (m == member) return mid;
            if (m < member) low = mid + 1;
            else high = mid;
        }
        revert SettlementCycleMemberMissing(subject, member);
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
