// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IConsortiumGuardErrors} from "../registry/IConsortiumGuardErrors.sol";

/**
 * @dev Receivables (invoices) registered by suppliers against buyers, confirmed by the buyer, held
 * in parts that can be split, passed on to other members and financed, and repaid at maturity to
 * whoever holds each part. Declares the states, events and errors of {ReceivableRegistry}.
 *
 * Amounts are integers of minor units of the receivable's ISO 4217 `currency`; dates are UTC day
 * numbers (days since 1970-01-01).
 */
interface IReceivableRegistry is IConsortiumGuardErrors {
    /**
     * @dev Lifecycle of a receivable. `Overdue` is never stored: {statusOf} reports it for a
     * confirmed receivable whose due date plus the grace period has passed.
     */
    enum ReceivableStatus {
        None,
        Registered,
        Confirmed,
        Overdue,
        Settled,
        Defaulted,
        Cancelled,
        Rejected
    }

    /// @dev Terms of a financing offer (see {FinancingOffered}).
    struct OfferTerms {
        uint128 advanceMinor;
        uint128 feeMinor;
        uint32 discountRatePpm;
        uint8 dayCountBasis;
        uint64 validUntil;
    }

    // ---- errors -------------------------------------------------------------------------------

    /// @dev No receivable has id `receivableId`.
    error ReceivableUnknown(bytes32 receivableId);
    /// @dev No part has id `partId`.
    error ReceivableUnknownPart(bytes32 partId);
    /// @dev The invoice `invoiceNumberHash` of buyer `buyerId` is live already, as receivable
    /// `receivableId` (the double-financing guard).
    error ReceivableInvoiceAlreadyRegistered(bytes32 buyerId, bytes32 invoiceNumberHash, bytes32 receivableId);
    /// @dev The invoice number is not canonical; `position` is the first offending byte (or the length).
    error ReceivableInvalidInvoiceNumber(uint256 position);
    /// @dev Member `memberId` is not the supplier of receivable `receivableId`.
    error ReceivableNotSupplier(bytes32 receivableId, bytes32 memberId);
    /// @dev Receivable `receivableId` is past its due date `dueDay` (today is `today`): its parts no longer move.
    error ReceivableDue(bytes32 receivableId, uint32 dueDay, uint256 today);
    /// @dev `currency` is not three upper-case ASCII letters (ISO 4217).
    error ReceivableInvalidCurrency(bytes3 currency);
    /// @dev The due date `dueDay` is before the issue date `issueDay`.
    error ReceivableInvalidDates(uint32 issueDay, uint32 dueDay);
    /// @dev `buyerId` is not an active member with the BUYER role, or is the supplier itself.
    error ReceivableInvalidBuyer(bytes32 buyerId);
    /// @dev Receivable `receivableId` is in `status`, which does not allow the operation.
    error ReceivableWrongStatus(bytes32 receivableId, ReceivableStatus status);
    /// @dev Member `memberId` is not the buyer of receivable `receivableId`.
    error ReceivableNotBuyer(bytes32 receivableId, bytes32 memberId);
    /// @dev Member `memberId` does not hold part `partId`.
    error ReceivableNotHolder(bytes32 partId, bytes32 memberId);
    /// @dev Part `partId` is financed: it can be neither split, transferred nor financed again.
    error ReceivablePartAlreadyFinanced(bytes32 partId);
    /// @dev Part `partId` has an open financing request to `financierId`; withdraw it first.
    error ReceivablePartLocked(bytes32 partId, bytes32 financierId);
    /// @dev A part of `amountMinor` is below the minimum part size `minimumMinor`.
    error ReceivablePartTooSmall(uint128 amountMinor, uint128 minimumMinor);
    /// @dev The split amounts of part `partId` sum to `sumMinor` instead of the `heldMinor` it holds.
    error ReceivableInvalidSplit(bytes32 partId, uint128 heldMinor, uint256 sumMinor);
    /// @dev Receivable `receivableId` would exceed {PARTS_PER_RECEIVABLE_MAX} with `partCount` parts.
    error ReceivableTooManyParts(bytes32 receivableId, uint256 partCount);
    /// @dev `memberId` cannot receive the part: not an active member with the SUPPLIER or FINANCIER
    /// role, the holder itself, or the receivable's buyer.
    error ReceivableInvalidRecipient(bytes32 memberId);
    /// @dev `financierId` is not an active member with the FINANCIER role, or is the holder itself.
    error ReceivableInvalidFinancier(bytes32 financierId);
    /// @dev Part `partId` has no open financing request.
    error ReceivableNoFinancingRequest(bytes32 partId);
    /// @dev Member `memberId` is not the financier named in the request on part `partId`.
    error ReceivableNotFinancier(bytes32 partId, bytes32 memberId);
    /// @dev Offer terms are not valid for a part of `amountMinor`: the advance must be positive and
    /// advance + fee must not exceed the part, the day-count basis must be known.
    error ReceivableInvalidOffer(uint128 advanceMinor, uint128 feeMinor, uint128 amountMinor, uint8 dayCountBasis);
    /// @dev Offer `offerId` is not the current offer on part `partId` (none, or superseded).
    error ReceivableUnknownOffer(bytes32 partId, uint64 offerId);
    /// @dev Offer `offerId` on part `partId` expired at `validUntil` (unix seconds).
    error ReceivableOfferExpired(bytes32 partId, uint64 offerId, uint64 validUntil);
    /// @dev The signature's deadline `deadline` (unix seconds) has passed.
    error ReceivableSignatureExpired(uint256 deadline);
    /// @dev The signature is not `signer`'s over these terms (ECDSA for a key, ERC-1271 for a
    /// contract wallet): malformed, another key's, or over other terms or another nonce.
    error ReceivableInvalidSignature(address signer);
    /// @dev `signer` is an account of member `signerMemberId`; an account of `expectedMemberId` must sign.
    error ReceivableWrongSigner(address signer, bytes32 signerMemberId, bytes32 expectedMemberId);
    /// @dev `nonce` is not usable by member `memberId`: its key's current nonce is `currentNonce`.
    error ReceivableInvalidNonce(bytes32 memberId, uint256 nonce, uint256 currentNonce);
    /// @dev Receivable `receivableId` is due on day `dueDay`; today is day `today`.
    error ReceivableNotMatured(bytes32 receivableId, uint32 dueDay, uint256 today);
    /// @dev Receivable `receivableId` is overdue only from day `overdueFromDay`; today is `today`.
    error ReceivableNotOverdue(bytes32 receivableId, uint256 overdueFromDay, uint256 today);
    /// @dev Member `memberId` holds no financed part of receivable `receivableId`.
    error ReceivableNotPartFinancier(bytes32 receivableId, bytes32 memberId);

    // ---- events -------------------------------------------------------------------------------

    /// @dev Supplier `supplierId` registered `receivableId`; its whole face value is part `partId`.
    event ReceivableRegistered(
        bytes32 indexed receivableId,
        bytes32 indexed supplierId,
        bytes32 indexed buyerId,
        bytes32 invoiceNumberHash,
        string invoiceNumber,
        uint128 faceValueMinor,
        bytes3 currency,
        uint32 issueDay,
        uint32 dueDay,
        bytes32 partId
    );
    /// @dev Supplier `supplierId` cancelled `receivableId` before confirmation; its invoice identity is free.
    event ReceivableCancelled(bytes32 indexed receivableId, bytes32 indexed supplierId);
    /// @dev Buyer `buyerId` rejected `receivableId` before confirmation; its invoice identity is free.
    event ReceivableRejected(bytes32 indexed receivableId, bytes32 indexed buyerId);
    /// @dev Buyer `buyerId` confirmed `receivableId`; `signer` is the buyer account that approved.
    event ReceivableConfirmed(bytes32 indexed receivableId, bytes32 indexed buyerId, address signer);
    /// @dev Part `fromPartId` was split: new part `newPartId` of `amountMinor`, held by the same member.
    event PartSplit(
        bytes32 indexed receivableId, bytes32 indexed fromPartId, bytes32 indexed newPartId, uint128 amountMinor
    );
    /// @dev Part `partId` of `amountMinor` passed from member `fromId` to member `toId`.
    event PartTransferred(bytes32 indexed partId, bytes32 indexed fromId, bytes32 indexed toId, uint128 amountMinor);
    /// @dev Holder `holderId` asked financier `financierId` to finance part `partId`.
    event FinancingRequested(bytes32 indexed partId, bytes32 indexed holderId, bytes32 indexed financierId);
    /// @dev The open financing request on part `partId` to `financierId` was withdrawn by the holder.
    event FinancingRequestWithdrawn(bytes32 indexed partId, bytes32 indexed financierId);
    /// @dev Financier `financierId` offered terms `offerId` for part `partId` (supersedes earlier offers).
    event FinancingOffered(
        bytes32 indexed partId,
        bytes32 indexed financierId,
        uint64 indexed offerId,
        uint128 advanceMinor,
        uint128 feeMinor,
        uint32 discountRatePpm,
        uint8 dayCountBasis,
        uint64 validUntil
    );
    /**
     * @dev Holder `sellerId` accepted offer `offerId`: part `partId` (of `amountMinor`) now belongs
     * to financier `financierId`, who owes the seller `advanceMinor` of `currency`, disbursed by the
     * service as a settlement outside this contract.
     */
    event FinancingAccepted(
        bytes32 indexed partId,
        bytes32 indexed financierId,
        bytes32 indexed sellerId,
        uint64 offerId,
        uint128 amountMinor,
        uint128 advanceMinor,
        uint128 feeMinor,
        bytes3 currency
    );
    /// @dev The buyer repaid `receivableId` in full (`faceValueMinor`); `recordedBy` sent the record.
    event ReceivableSettled(bytes32 indexed receivableId, bytes32 indexed buyerId, uint128 faceValueMinor, address recordedBy);
    /// @dev Of a settled receivable, `holderId` is to be paid `amountMinor` for part `partId`.
    event PartRepaid(bytes32 indexed partId, bytes32 indexed holderId, uint128 amountMinor);
    /// @dev Member `memberId` voided its unused signatures with nonce key `key`: the next sequence is `nextSequence`.
    event NoncesInvalidated(bytes32 indexed memberId, uint192 indexed key, uint64 nextSequence);
    /// @dev Financier `financierId` declared `receivableId` defaulted, past its due date and grace period.
    event ReceivableDefaulted(bytes32 indexed receivableId, bytes32 indexed financierId);
}
