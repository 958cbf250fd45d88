// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ConsortiumGuarded} from "../registry/ConsortiumGuarded.sol";
import {IConsortiumRegistry} from "../registry/IConsortiumRegistry.sol";
import {IReceivableRegistry} from "./IReceivableRegistry.sol";

/**
 * @dev The consortium's receivables (supply-chain finance), with the double-financing guard.
 *
 * - A supplier registers a receivable against a buyer with the invoice number itself, in the
 *   canonical form this contract checks ({INVOICE_NUMBER_LENGTH_MAX} bytes at most of `A`-`Z`,
 *   `0`-`9` and the separators `-` `/` `.`, starting and ending with a letter or digit, no two
 *   separators in a row). The invoice's identity is the buyer and the number's letters and digits
 *   (separators ignored): `invoiceNumberHash = keccak256(compact number)`, computed here. One
 *   identity is live at most once, whoever registers it and whatever its amounts and dates; the
 *   supplier's cancellation or the buyer's rejection of a registered receivable frees it.
 * - Ids are derived, so the service knows them before the transaction is mined:
 *   `receivableId = keccak256(abi.encode(buyerId, invoiceNumberHash, registrationIndex))`
 *   ({receivableIdOf}, the index counting earlier registrations of that identity) and
 *   `partId = keccak256(abi.encode(receivableId, index))`, index 0 being the whole face value at
 *   registration and 1, 2, ... the parts created by splits, in order ({partIdAt}).
 * - The buyer confirms (itself, or by an EIP-712 signature relayed by anyone), or rejects.
 * - Parts move (split, transfer, financing) only until the due date; transfers go to active
 *   members with the SUPPLIER or FINANCIER role, never to the buyer.
 * - The face value is held in parts (holder member, amount, financed flag) whose amounts always
 *   sum to the face value. The holder of a confirmed, unfinanced part splits it or passes it on.
 * - The holder asks a financier; the financier offers terms; the holder accepts (itself, or by an
 *   EIP-712 signature), and the part passes to the financier, financed for good.
 * - At or after the due date the buyer reports its repayment (the operator cannot); each part
 *   becomes repaid when its holder confirms receipt ({PartRepaid}), the receivable settled when
 *   all are ({ReceivableSettled}).
 * - After the due date and the grace period, a financier holding a financed part not yet repaid
 *   may declare a default, even after the buyer reported a repayment.
 *
 * Dates are UTC day numbers (days since 1970-01-01); "today" is `block.timestamp / 1 days`.
 */
contract ReceivableRegistry is ConsortiumGuarded, EIP712, IReceivableRegistry {
    /// @dev Bounds the parts of one receivable, so every loop over them is bounded.
    uint256 public constant PARTS_PER_RECEIVABLE_MAX = 32;
    /// @dev Smallest part (and face value), in minor units.
    uint128 public constant PART_AMOUNT_MIN = 100;
    /// @dev Day-count bases of financing offers (see settlement/financing.py).
    uint8 public constant DAY_COUNT_ACT_360 = 1;
    uint8 public constant DAY_COUNT_ACT_365 = 2;

    /// @dev Longest canonical invoice number, in bytes.
    uint256 public constant INVOICE_NUMBER_LENGTH_MAX = 64;
    /// @dev EIP-712 types: what each signer approves, in terms (amounts in minor units of `currency`,
    /// dates as UTC day numbers); `nonce` is a keyed nonce ({nonces}).
    bytes32 public constant CONFIRM_TYPEHASH = keccak256(
        "ConfirmReceivable(bytes32 receivableId,bytes32 supplierId,bytes32 invoiceNumberHash,uint128 faceValueMinor,string currency,uint32 issueDay,uint32 dueDay,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant OFFER_TYPEHASH = keccak256(
        "FinancingOffer(bytes32 partId,bytes32 offerId,bytes32 financierId,uint128 amountMinor,string currency,uint32 dueDay,uint128 advanceMinor,uint128 feeMinor,uint32 discountRatePpm,uint8 dayCountBasis,uint64 validUntil,uint256 nonce,uint256 deadline)"
    );
    bytes32 public constant ACCEPT_OFFER_TYPEHASH = keccak256(
        "AcceptFinancingOffer(bytes32 partId,bytes32 offerId,bytes32 financierId,uint128 amountMinor,string currency,uint32 dueDay,uint128 advanceMinor,uint128 feeMinor,uint32 discountRatePpm,uint8 dayCountBasis,uint64 validUntil,uint256 nonce,uint256 deadline)"
    );

    /// @dev Days after the due date during which a confirmed receivable is late but not overdue.
    uint32 public immutable gracePeriodDays;

    mapping(bytes32 receivableId => Receivable) private _receivables;
    mapping(bytes32 partId => Part) private _parts;
    mapping(bytes32 partId => Financing) private _financings;
    mapping(bytes32 invoiceKey => bytes32 receivableId) private _receivableOfInvoice;
    mapping(bytes32 invoiceKey => uint256) private _registrationsOfInvoice;
    mapping(bytes32 memberId => mapping(uint192 key => uint64 sequence)) private _nonceSequences;
    mapping(bytes32 offerId => bytes32 partId) private _partOfOffer;

    constructor(IConsortiumRegistry registry_, address trustedForwarder_, uint32 gracePeriodDays_)
        ConsortiumGuarded(registry_, trustedForwarder_)
        EIP712("ReceivableRegistry", "1")
    {
        gracePeriodDays = gracePeriodDays_;
    }

    // ---- register and confirm ------------------------------------------------------------------

    /// @inheritdoc IReceivableRegistry
    function register(
        bytes32 buyerId,
        string calldata invoiceNumber,
        uint128 faceValueMinor,
        bytes3 currency,
        uint32 issueDay,
        uint32 dueDay
    ) external returns (bytes32 receivableId) {
        bytes32 supplierId = _requireRole(ROLE_SUPPLIER);
        bytes32 invoiceNumberHash = invoiceNumberHashOf(invoiceNumber);
        bytes32 key = _invoiceKey(buyerId, invoiceNumberHash);
        bytes32 existing = _receivableOfInvoice[key];
        if (existing != bytes32(0)) revert ReceivableInvoiceAlreadyRegistered(buyerId, invoiceNumberHash, existing);
        if (faceValueMinor < PART_AMOUNT_MIN) revert ReceivablePartTooSmall(faceValueMinor, PART_AMOUNT_MIN);
        _checkCurrency(currency);
        if (dueDay < issueDay) revert ReceivableInvalidDates(issueDay, dueDay);
        if (buyerId == supplierId || !_isActiveWithRole(buyerId, ROLE_BUYER)) revert ReceivableInvalidBuyer(buyerId);

        receivableId = receivableIdOf(buyerId, invoiceNumberHash, _registrationsOfInvoice[key]);
        _registrationsOfInvoice[key] += 1;
        _receivableOfInvoice[key] = receivableId;
        _receivables[receivableId] = Receivable({
            supplierId: supplierId,
            buyerId: buyerId,
            invoiceNumberHash: invoiceNumberHash,
            faceValueMinor: faceValueMinor,
            currency: currency,
            issueDay: issueDay,
            dueDay: dueDay,
            status: ReceivableStatus.Registered,
            partCount: 1,
            repaymentReported: false,
            repaidPartCount: 0
        });
        _parts[partIdAt(receivableId, 0)] =
            Part({receivableId: receivableId, holderId: supplierId, amountMinor: faceValueMinor, financed: false, repaid: false});
        _emitRegistered(receivableId, invoiceNumber);
    }

    /// @inheritdoc IReceivableRegistry
    function cancel(bytes32 receivableId) external {
        bytes32 callerId = _requireMember();
        Receivable storage r = _receivable(receivableId);
        if (callerId != r.supplierId) revert ReceivableNotSupplier(receivableId, callerId);
        _free(receivableId, r, ReceivableStatus.Cancelled);
        emit ReceivableCancelled(receivableId, callerId);
    }

    /// @inheritdoc IReceivableRegistry
    function reject(bytes32 receivableId) external {
        bytes32 callerId = _requireRole(ROLE_BUYER);
        Receivable storage r = _receivable(receivableId);
        if (callerId != r.buyerId) revert ReceivableNotBuyer(receivableId, callerId);
        _free(receivableId, r, ReceivableStatus.Rejected);
        emit ReceivableRejected(receivableId, callerId);
    }

    /// @inheritdoc IReceivableRegistry
    function confirm(bytes32 receivableId) external {
        bytes32 callerId = _requireRole(ROLE_BUYER);
        _confirm(receivableId, callerId, _msgSender());
    }

    /// @inheritdoc IReceivableRegistry
    function confirmWithSignature(
        bytes32 receivableId,
        address signer,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external {
        Receivable storage r = _receivable(receivableId);
        bytes32 buyerId = r.buyerId;
        bytes32 structHash = keccak256(
            bytes.concat(
                abi.encode(CONFIRM_TYPEHASH, receivableId, r.supplierId, r.invoiceNumberHash, r.faceValueMinor),
                abi.encode(keccak256(abi.encodePacked(r.currency)), r.issueDay, r.dueDay, nonce, deadline)
            )
        );
        _verifySignature(structHash, signer, deadline, signature, buyerId, ROLE_BUYER);
        _useNonce(buyerId, nonce);
        _confirm(receivableId, buyerId, signer);
    }

    // ---- parts -------------------------------------------------------------------------------

    /// @inheritdoc IReceivableRegistry
    function splitPart(bytes32 partId, uint128[] calldata amountsMinor) external returns (bytes32[] memory newPartIds) {
        (Part storage p, Receivable storage r) = _movablePartOfCaller(partId);
        bytes32 receivableId = p.receivableId;
        uint256 count = amountsMinor.length;
        uint256 partCount = r.partCount;
        if (partCount + count - 1 > PARTS_PER_RECEIVABLE_MAX || count > PARTS_PER_RECEIVABLE_MAX) {
            revert ReceivableTooManyParts(receivableId, partCount + count - 1);
        }
        uint256 sumMinor = 0;
        for (uint256 i = 0; i < count; ++i) {
            if (amountsMinor[i] < PART_AMOUNT_MIN) revert ReceivablePartTooSmall(amountsMinor[i], PART_AMOUNT_MIN);
            sumMinor += amountsMinor[i];
        }
        if (count < 2 || sumMinor != p.amountMinor) revert ReceivableInvalidSplit(partId, p.amountMinor, sumMinor);

        p.amountMinor = amountsMinor[0];
        newPartIds = new bytes32[](count - 1);
        for (uint256 i = 1; i < count; ++i) {
            bytes32 newPartId = partIdAt(receivableId, partCount + i - 1);
            _parts[newPartId] =
                Part({receivableId: receivableId, holderId: p.holderId, amountMinor: amountsMinor[i], financed: false, repaid: false});
            newPartIds[i - 1] = newPartId;
        }
        r.partCount = uint8(partCount + count - 1);
        for (uint256 i = 1; i < count; ++i) {
            emit PartSplit(receivableId, partId, newPartIds[i - 1], amountsMinor[i]);
        }
    }

    /// @inheritdoc IReceivableRegistry
    function transferPart(bytes32 partId, bytes32 toId) external {
        (Part storage p, Receivable storage r) = _movablePartOfCaller(partId);
        bytes32 fromId = p.holderId;
        if (
            toId == fromId || toId == r.buyerId
                || !(_isActiveWithRole(toId, ROLE_SUPPLIER) || _isActiveWithRole(toId, ROLE_FINANCIER))
        ) revert ReceivableInvalidRecipient(toId);
        p.holderId = toId;
        emit PartTransferred(partId, fromId, toId, p.amountMinor);
    }

    // ---- financing ---------------------------------------------------------------------------

    /// @inheritdoc IReceivableRegistry
    function requestFinancing(bytes32 partId, bytes32 financierId) external {
        bytes32 holderId = _requireRole(ROLE_SUPPLIER);
        Part storage p = _financeablePart(partId);
        if (p.holderId != holderId) revert ReceivableNotHolder(partId, holderId);
        if (financierId == holderId || !_isActiveWithRole(financierId, ROLE_FINANCIER)) {
            revert ReceivableInvalidFinancier(financierId);
        }
        Financing storage f = _financings[partId];
        f.financierId = financierId;
        f.open = true;
        f.offerId = bytes32(0);
        f.validUntil = 0;
        f.advanceMinor = 0;
        f.feeMinor = 0;
        f.discountRatePpm = 0;
        f.dayCountBasis = 0;
        emit FinancingRequested(partId, holderId, financierId);
    }

    /// @inheritdoc IReceivableRegistry
    function withdrawFinancingRequest(bytes32 partId) external {
        bytes32 callerId = _requireMember();
        Part storage p = _part(partId);
        if (p.holderId != callerId) revert ReceivableNotHolder(partId, callerId);
        Financing storage f = _financings[partId];
        if (!f.open) revert ReceivableNoFinancingRequest(partId);
        f.open = false;
        f.offerId = bytes32(0);
        emit FinancingRequestWithdrawn(partId, f.financierId);
    }

    /// @inheritdoc IReceivableRegistry
    function offerFinancing(
        bytes32 partId,
        bytes32 offerId,
        uint128 advanceMinor,
        uint128 feeMinor,
        uint32 discountRatePpm,
        uint8 dayCountBasis,
        uint64 validUntil
    ) external {
        bytes32 financierId = _requireRole(ROLE_FINANCIER);
        _offer(partId, offerId, financierId, OfferTerms(advanceMinor, feeMinor, discountRatePpm, dayCountBasis, validUntil));
    }

    /// @inheritdoc IReceivableRegistry
    function offerFinancingWithSignature(
        bytes32 partId,
        bytes32 offerId,
        OfferTerms calldata terms,
        address signer,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external {
        Part storage p = _part(partId);
        bytes32 financierId = _financings[partId].financierId;
        Receivable storage r = _receivables[p.receivableId];
        bytes32 structHash = keccak256(
            bytes.concat(
                abi.encode(OFFER_TYPEHASH, partId, offerId, financierId, p.amountMinor, keccak256(abi.encodePacked(r.currency))),
                abi.encode(r.dueDay, terms.advanceMinor, terms.feeMinor, terms.discountRatePpm, terms.dayCountBasis),
                abi.encode(terms.validUntil, nonce, deadline)
            )
        );
        _verifySignature(structHash, signer, deadline, signature, financierId, ROLE_FINANCIER);
        _useNonce(financierId, nonce);
        _offer(partId, offerId, financierId, terms);
    }

    /// @inheritdoc IReceivableRegistry
    function acceptOffer(bytes32 partId, bytes32 offerId) external {
        bytes32 holderId = _requireRole(ROLE_SUPPLIER);
        Part storage p = _financeablePart(partId);
        if (p.holderId != holderId) revert ReceivableNotHolder(partId, holderId);
        _accept(partId, p, offerId);
    }

    /// @inheritdoc IReceivableRegistry
    function acceptOfferWithSignature(
        bytes32 partId,
        bytes32 offerId,
        address signer,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external {
        Part storage p = _financeablePart(partId);
        bytes32 holderId = p.holderId;
        Financing storage f = _financings[partId];
        if (!f.open || offerId == bytes32(0) || f.offerId != offerId) revert ReceivableUnknownOffer(partId, offerId);
        bytes32 structHash = keccak256(
            bytes.concat(
                abi.encode(ACCEPT_OFFER_TYPEHASH, partId, offerId, f.financierId, p.amountMinor),
                abi.encode(keccak256(abi.encodePacked(_receivables[p.receivableId].currency)), _receivables[p.receivableId].dueDay),
                abi.encode(f.advanceMinor, f.feeMinor, f.discountRatePpm, f.dayCountBasis, f.validUntil, nonce, deadline)
            )
        );
        _verifySignature(structHash, signer, deadline, signature, holderId, ROLE_SUPPLIER);
        _useNonce(holderId, nonce);
        _accept(partId, p, offerId);
    }

    // ---- nonces ------------------------------------------------------------------------------

    /// @inheritdoc IReceivableRegistry
    function invalidateNonce(uint256 nonce) external {
        bytes32 memberId = _requireMember();
        uint192 key = uint192(nonce >> 64);
        uint64 sequence = uint64(nonce);
        uint64 current = _nonceSequences[memberId][key];
        if (sequence < current || sequence == type(uint64).max) {
            revert ReceivableInvalidNonce(memberId, nonce, _nonceOf(key, current));
        }
        _nonceSequences[memberId][key] = sequence + 1;
        emit NoncesInvalidated(memberId, key, sequence + 1);
    }

    // ---- repayment and default ----------------------------------------------------------------

    /// @inheritdoc IReceivableRegistry
    function reportRepayment(bytes32 receivableId) external {
        bytes32 callerId = _requireRole(ROLE_BUYER);
        Receivable storage r = _receivable(receivableId);
        if (callerId != r.buyerId) revert ReceivableNotBuyer(receivableId, callerId);
        ReceivableStatus status = r.status;
        if (status != ReceivableStatus.Confirmed && status != ReceivableStatus.Defaulted) {
            revert ReceivableWrongStatus(receivableId, status);
        }
        if (r.repaymentReported) revert ReceivableRepaymentAlreadyReported(receivableId);
        uint256 today_ = today();
        if (today_ < r.dueDay) revert ReceivableNotMatured(receivableId, r.dueDay, today_);
        r.repaymentReported = true;
        emit RepaymentReported(receivableId, callerId, r.faceValueMinor);
    }

    /// @inheritdoc IReceivableRegistry
    function confirmRepaymentReceived(bytes32 partId) external {
        bytes32 callerId = _requireMember();
        Part storage p = _part(partId);
        if (p.holderId != callerId) revert ReceivableNotHolder(partId, callerId);
        bytes32 receivableId = p.receivableId;
        Receivable storage r = _receivables[receivableId];
        if (!r.repaymentReported) revert ReceivableRepaymentNotReported(receivableId);
        if (p.repaid) revert ReceivablePartAlreadyRepaid(partId);
        p.repaid = true;
        emit PartRepaid(partId, callerId, p.amountMinor);
        uint8 repaidCount = r.repaidPartCount + 1;
        r.repaidPartCount = repaidCount;
        if (repaidCount == r.partCount) {
            r.status = ReceivableStatus.Settled;
            emit ReceivableSettled(receivableId, r.buyerId, r.faceValueMinor);
            // Invariant: the holdings always sum to the face value, so the repaid parts do too.
            uint256 repaidMinor = 0;
            for (uint256 i = 0; i < repaidCount; ++i) {
                repaidMinor += _parts[partIdAt(receivableId, i)].amountMinor;
            }
            assert(repaidMinor == r.faceValueMinor);
        }
    }

    /// @inheritdoc IReceivableRegistry
    function declareDefault(bytes32 receivableId) external {
        bytes32 financierId = _requireRole(ROLE_FINANCIER);
        Receivable storage r = _receivable(receivableId);
        if (r.status != ReceivableStatus.Confirmed) revert ReceivableWrongStatus(receivableId, r.status);
        uint256 overdueFrom = overdueFromDay(receivableId);
        uint256 today_ = today();
        if (today_ < overdueFrom) revert ReceivableNotOverdue(receivableId, overdueFrom, today_);
        if (!_holdsUnrepaidFinancedPart(receivableId, r.partCount, financierId)) {
            revert ReceivableNotPartFinancier(receivableId, financierId);
        }
        r.status = ReceivableStatus.Defaulted;
        emit ReceivableDefaulted(receivableId, financierId);
    }

    // ---- views -------------------------------------------------------------------------------

    /// @inheritdoc IReceivableRegistry
    function getReceivable(bytes32 receivableId) external view returns (Receivable memory) {
        return _receivable(receivableId);
    }

    /// @inheritdoc IReceivableRegistry
    function statusOf(bytes32 receivableId) external view returns (ReceivableStatus) {
        ReceivableStatus status = _receivables[receivableId].status;
        if (status == ReceivableStatus.Confirmed && today() >= overdueFromDay(receivableId)) {
            return ReceivableStatus.Overdue;
        }
        return status;
    }

    /// @inheritdoc IReceivableRegistry
    function overdueFromDay(bytes32 receivableId) public view returns (uint256) {
        return uint256(_receivables[receivableId].dueDay) + gracePeriodDays + 1;
    }

    /// @inheritdoc IReceivableRegistry
    function getPart(bytes32 partId) external view returns (Part memory) {
        return _part(partId);
    }

    /// @inheritdoc IReceivableRegistry
    function getFinancing(bytes32 partId) external view returns (Financing memory) {
        return _financings[partId];
    }

    /// @inheritdoc IReceivableRegistry
    function partOfOffer(bytes32 offerId) external view returns (bytes32) {
        return _partOfOffer[offerId];
    }

    /// @inheritdoc IReceivableRegistry
    function partsOf(bytes32 receivableId)
        external
        view
        returns (bytes32[] memory ids, bytes32[] memory holderIds, uint128[] memory amountsMinor, bool[] memory financed)
    {
        uint256 count = _receivable(receivableId).partCount;
        ids = new bytes32[](count);
        holderIds = new bytes32[](count);
        amountsMinor = new uint128[](count);
        financed = new bool[](count);
        for (uint256 i = 0; i < count; ++i) {
            bytes32 partId = partIdAt(receivableId, i);
            Part storage p = _parts[partId];
            (ids[i], holderIds[i], amountsMinor[i], financed[i]) = (partId, p.holderId, p.amountMinor, p.financed);
        }
    }

    /// @inheritdoc IReceivableRegistry
    function receivableOfInvoice(bytes32 buyerId, bytes32 invoiceNumberHash) external view returns (bytes32) {
        return _receivableOfInvoice[_invoiceKey(buyerId, invoiceNumberHash)];
    }

    /// @inheritdoc IReceivableRegistry
    function registrationsOfInvoice(bytes32 buyerId, bytes32 invoiceNumberHash) external view returns (uint256) {
        return _registrationsOfInvoice[_invoiceKey(buyerId, invoiceNumberHash)];
    }

    /// @inheritdoc IReceivableRegistry
    function nonces(bytes32 memberId, uint192 key) external view returns (uint256) {
        return _nonceOf(key, _nonceSequences[memberId][key]);
    }

    /// @inheritdoc IReceivableRegistry
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @inheritdoc IReceivableRegistry
    function today() public view returns (uint256) {
        return block.timestamp / 1 days;
    }

    /// @inheritdoc IReceivableRegistry
    function receivableIdOf(bytes32 buyerId, bytes32 invoiceNumberHash, uint256 index) public pure returns (bytes32) {
        return keccak256(abi.encode(buyerId, invoiceNumberHash, index));
    }

    /// @inheritdoc IReceivableRegistry
    function partIdAt(bytes32 receivableId, uint256 index) public pure returns (bytes32) {
        return keccak256(abi.encode(receivableId, index));
    }

    /// @inheritdoc IReceivableRegistry
    function invoiceNumberHashOf(string calldata invoiceNumber) public pure returns (bytes32) {
        bytes calldata raw = bytes(invoiceNumber);
        uint256 length = raw.length;
        if (length == 0 || length > INVOICE_NUMBER_LENGTH_MAX) revert ReceivableInvalidInvoiceNumber(length);
        bytes memory compact = new bytes(length);
        uint256 kept = 0;
        bool previousSeparator = true; // a separator may not come first
        for (uint256 i = 0; i < length; ++i) {
            bytes1 c = raw[i];
            if ((c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39)) {
                compact[kept++] = c;
                previousSeparator = false;
            } else if ((c == 0x2d || c == 0x2f || c == 0x2e) && !previousSeparator) {
                previousSeparator = true;
            } else {
                revert ReceivableInvalidInvoiceNumber(i);
            }
        }
        if (previousSeparator) revert ReceivableInvalidInvoiceNumber(length - 1); // trailing separator
        assembly ("memory-safe") {
            mstore(compact, kept)
        }
        return keccak256(compact);
    }

    // ---- internals ---------------------------------------------------------------------------

    function _invoiceKey(bytes32 buyerId, bytes32 invoiceNumberHash) private pure returns (bytes32) {
        return keccak256(abi.encode(buyerId, invoiceNumberHash));
    }

    function _emitRegistered(bytes32 receivableId, string calldata invoiceNumber) private {
        Receivable storage r = _receivables[receivableId];
        emit ReceivableRegistered(
            receivableId,
            r.supplierId,
            r.buyerId,
            r.invoiceNumberHash,
            invoiceNumber,
            r.faceValueMinor,
            r.currency,
            r.issueDay,
            r.dueDay,
            partIdAt(receivableId, 0)
        );
    }

    /// @dev Ends a registered receivable before confirmation, freeing its invoice identity.
    function _free(bytes32 receivableId, Receivable storage r, ReceivableStatus status) private {
        if (r.status != ReceivableStatus.Registered) revert ReceivableWrongStatus(receivableId, r.status);
        r.status = status;
        delete _receivableOfInvoice[_invoiceKey(r.buyerId, r.invoiceNumberHash)];
    }

    /// @dev Reverts once the receivable is past its due date: its parts no longer move.
    function _requireNotDue(bytes32 receivableId, Receivable storage r) private view {
        if (r.repaymentReported) revert ReceivableRepaymentAlreadyReported(receivableId);
        uint256 today_ = today();
        if (today_ > r.dueDay) revert ReceivableDue(receivableId, r.dueDay, today_);
    }

    function _confirm(bytes32 receivableId, bytes32 callerId, address signer) private {
        Receivable storage r = _receivable(receivableId);
        if (callerId != r.buyerId) revert ReceivableNotBuyer(receivableId, callerId);
        if (r.status != ReceivableStatus.Registered) revert ReceivableWrongStatus(receivableId, r.status);
        r.status = ReceivableStatus.Confirmed;
        emit ReceivableConfirmed(receivableId, callerId, signer);
    }

    function _accept(bytes32 partId, Part storage p, bytes32 offerId) private {
        Financing storage f = _financings[partId];
        if (!f.open || offerId == bytes32(0) || f.offerId != offerId) revert ReceivableUnknownOffer(partId, offerId);
        if (block.timestamp > f.validUntil) revert ReceivableOfferExpired(partId, offerId, f.validUntil);
        bytes32 financierId = f.financierId;
        if (!_isActiveWithRole(financierId, ROLE_FINANCIER)) revert ReceivableInvalidFinancier(financierId);
        bytes32 sellerId = p.holderId;
        p.holderId = financierId;
        p.financed = true;
        f.open = false;
        emit FinancingAccepted(
            partId,
            financierId,
            sellerId,
            offerId,
            p.amountMinor,
            f.advanceMinor,
            f.feeMinor,
            _receivables[p.receivableId].currency
        );
    }

    function _offer(bytes32 partId, bytes32 offerId, bytes32 financierId, OfferTerms memory t) private {
        Part storage p = _financeablePart(partId);
        Financing storage f = _financings[partId];
        if (!f.open) revert ReceivableNoFinancingRequest(partId);
        if (f.financierId != financierId) revert ReceivableNotFinancier(partId, financierId);
        bool basisKnown = t.dayCountBasis == DAY_COUNT_ACT_360 || t.dayCountBasis == DAY_COUNT_ACT_365;
        if (t.advanceMinor == 0 || uint256(t.advanceMinor) + t.feeMinor > p.amountMinor || !basisKnown) {
            revert ReceivableInvalidOffer(t.advanceMinor, t.feeMinor, p.amountMinor, t.dayCountBasis);
        }
        if (t.validUntil < block.timestamp) revert ReceivableOfferExpired(partId, offerId, t.validUntil);
        if (offerId == bytes32(0) || _partOfOffer[offerId] != bytes32(0)) revert ReceivableOfferIdTaken(offerId);
        _partOfOffer[offerId] = partId;
        f.offerId = offerId;
        f.validUntil = t.validUntil;
        f.advanceMinor = t.advanceMinor;
        f.feeMinor = t.feeMinor;
        f.discountRatePpm = t.discountRatePpm;
        f.dayCountBasis = t.dayCountBasis;
        emit FinancingOffered(
            partId, financierId, offerId, t.advanceMinor, t.feeMinor, t.discountRatePpm, t.dayCountBasis, t.validUntil
        );
    }

    /// @dev Checks the EIP-712 signature of `structHash` by `signer`: a valid ECDSA signature of an
    /// externally owned account, or an ERC-1271 approval by a contract wallet; `signer` must be an
    /// account of `memberId`, active, holding `role`.
    function _verifySignature(
        bytes32 structHash,
        address signer,
        uint256 deadline,
        bytes calldata signature,
        bytes32 memberId,
        bytes32 role
    ) private view {
        if (block.timestamp > deadline) revert ReceivableSignatureExpired(deadline);
        bytes32 signerId = registry.memberOf(signer);
        if (signerId != memberId) revert ReceivableWrongSigner(signer, signerId, memberId);
        if (!_isValidSignatureNow(signer, _hashTypedDataV4(structHash), signature)) {
            revert ReceivableInvalidSignature(signer);
        }
        registry.requireActiveRole(signer, role);
    }

    /// @dev OpenZeppelin's `SignatureChecker.isValidSignatureNow`, inlined: OpenZeppelin 5.4's
    /// library imports `Bytes.sol`, whose `mcopy` does not compile for the London EVM we target.
    function _isValidSignatureNow(address signer, bytes32 hash, bytes calldata signature) private view returns (bool) {
        if (signer.code.length == 0) {
            (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature);
            return err == ECDSA.RecoverError.NoError && recovered == signer;
        }
        (bool success, bytes memory result) =
            signer.staticcall(abi.encodeCall(IERC1271.isValidSignature, (hash, signature)));
        return success && result.length >= 32
            && abi.decode(result, (bytes32)) == bytes32(IERC1271.isValidSignature.selector);
    }

    /// @dev Consumes `nonce` of `memberId`: its sequence must be the current one of its key.
    function _useNonce(bytes32 memberId, uint256 nonce) private {
        uint192 key = uint192(nonce >> 64);
        uint64 current = _nonceSequences[memberId][key];
        if (uint64(nonce) != current) revert ReceivableInvalidNonce(memberId, nonce, _nonceOf(key, current));
        _nonceSequences[memberId][key] = current + 1;
    }

    function _nonceOf(uint192 key, uint64 sequence) private pure returns (uint256) {
        return (uint256(key) << 64) | sequence;
    }

    /// @dev A part the caller's member holds and may split or transfer.
    function _movablePartOfCaller(bytes32 partId) private view returns (Part storage p, Receivable storage r) {
        bytes32 callerId = _requireMember();
        p = _part(partId);
        if (p.holderId != callerId) revert ReceivableNotHolder(partId, callerId);
        r = _receivables[p.receivableId];
        if (r.status != ReceivableStatus.Confirmed) revert ReceivableWrongStatus(p.receivableId, r.status);
        _requireNotDue(p.receivableId, r);
        if (p.financed) revert ReceivablePartAlreadyFinanced(partId);
        Financing storage f = _financings[partId];
        if (f.open) revert ReceivablePartLocked(partId, f.financierId);
    }

    /// @dev A part that may still be financed: of a confirmed receivable not past its due date, not financed.
    function _financeablePart(bytes32 partId) private view returns (Part storage p) {
        p = _part(partId);
        Receivable storage r = _receivables[p.receivableId];
        if (r.status != ReceivableStatus.Confirmed) revert ReceivableWrongStatus(p.receivableId, r.status);
        _requireNotDue(p.receivableId, r);
        if (p.financed) revert ReceivablePartAlreadyFinanced(partId);
    }

    function _holdsUnrepaidFinancedPart(bytes32 receivableId, uint256 partCount, bytes32 memberId)
        private
        view
        returns (bool)
    {
        for (uint256 i = 0; i < partCount; ++i) {
            Part storage p = _parts[partIdAt(receivableId, i)];
            if (p.financed && !p.repaid && p.holderId == memberId) return true;
        }
        return false;
    }

    function _receivable(bytes32 receivableId) private view returns (Receivable storage r) {
        r = _receivables[receivableId];
        if (r.status == ReceivableStatus.None) revert ReceivableUnknown(receivableId);
    }

    function _part(bytes32 partId) private view returns (Part storage p) {
        p = _parts[partId];
        if (p.receivableId == bytes32(0)) revert ReceivableUnknownPart(partId);
    }

    function _isActiveWithRole(bytes32 memberId, bytes32 role) private view returns (bool) {
        return registry.isActive(memberId) && registry.memberHasRole(memberId, role);
    }

    function _checkCurrency(bytes3 currency) private pure {
        for (uint256 i = 0; i < 3; ++i) {
            bytes1 c = currency[i];
            if (c < 0x41 || c > 0x5a) revert ReceivableInvalidCurrency(currency);
        }
    }
}
