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

    /// @dev A receivable: its parties, invoice identity, terms and state. `repaymentReported` once
    /// the buyer reported its repayment; `repaidPartCount` parts whose holder confirmed receipt.
    struct Receivable {
        bytes32 supplierId;
        bytes32 buyerId;
        bytes32 invoiceNumberHash;
        uint128 faceValueMinor;
        bytes3 currency;
        uint32 issueDay;
        uint32 dueDay;
        ReceivableStatus status;
        uint8 partCount;
        bool repaymentReported;
        uint8 repaidPartCount;
    }

    /// @dev A part of a receivable: its holder, amount, whether financed, and whether its holder
    /// confirmed the buyer's repayment.
    struct Part {
        bytes32 receivableId;
        bytes32 holderId;
        uint128 amountMinor;
        bool financed;
        bool repaid;
    }

    /// @dev The financing of a part: an open request (`open`), its current offer (`offerId` not
    /// zero), and once accepted (`open` false, part financed) the terms it was financed on.
    struct Financing {
        bytes32 financierId;
        bytes32 offerId;
        uint128 advanceMinor;
        uint128 feeMinor;
        uint64 validUntil;
        uint32 discountRatePpm;
        uint8 dayCountBasis;
        bool open;
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
    error ReceivableUnknownOffer(bytes32 partId, bytes32 offerId);
    /// @dev Offer `offerId` on part `partId` expired at `validUntil` (unix seconds).
    error ReceivableOfferExpired(bytes32 partId, bytes32 offerId, uint64 validUntil);
    /// @dev Offer id `offerId` is zero or was used already (by any offer on any part): offer ids are
    /// chosen by the offering side and never reused.
    error ReceivableOfferIdTaken(bytes32 offerId);
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
    /// @dev The buyer already reported the repayment of `receivableId`: its parts no longer move.
    error ReceivableRepaymentAlreadyReported(bytes32 receivableId);
    /// @dev The buyer has not reported the repayment of `receivableId` yet.
    error ReceivableRepaymentNotReported(bytes32 receivableId);
    /// @dev Part `partId` is repaid already (its holder confirmed receipt).
    error ReceivablePartAlreadyRepaid(bytes32 partId);
    /// @dev Member `memberId` holds no financed, unrepaid part of receivable `receivableId`.
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
        bytes32 indexed offerId,
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
        bytes32 offerId,
        uint128 amountMinor,
        uint128 advanceMinor,
        uint128 feeMinor,
        bytes3 currency
    );
    /// @dev Buyer `buyerId` reported it repaid `receivableId` in full (`faceValueMinor`), each holder its parts.
    event RepaymentReported(bytes32 indexed receivableId, bytes32 indexed buyerId, uint128 faceValueMinor);
    /// @dev Holder `holderId` confirmed it received the repayment of part `partId` (`amountMinor`).
    event PartRepaid(bytes32 indexed partId, bytes32 indexed holderId, uint128 amountMinor);
    /// @dev Every part of `receivableId` is repaid: the buyer's `faceValueMinor` reached the holders.
    event ReceivableSettled(bytes32 indexed receivableId, bytes32 indexed buyerId, uint128 faceValueMinor);
    /// @dev Member `memberId` voided its unused signatures with nonce key `key`: the next sequence is `nextSequence`.
    event NoncesInvalidated(bytes32 indexed memberId, uint192 indexed key, uint64 nextSequence);
    /// @dev Financier `financierId` declared `receivableId` defaulted, past its due date and grace period.
    event ReceivableDefaulted(bytes32 indexed receivableId, bytes32 indexed financierId);

    // ---- functions ----------------------------------------------------------------------------

    /**
     * @dev Registers a receivable of the caller's member (the supplier) against `buyerId` for the
     * invoice numbered `invoiceNumber` (canonical form, see the contract's description); its whole
     * face value becomes part 0, held by the supplier. Returns the receivable id.
     *
     * Requirements: the caller is an active member with the SUPPLIER role; `buyerId` is another
     * active member with the BUYER role; `invoiceNumber` is canonical and its identity (buyer,
     * letters and digits) is not live; `faceValueMinor` >= {PART_AMOUNT_MIN}; `currency` is three
     * upper-case letters; `issueDay` <= `dueDay`.
     *
     * Emits {ReceivableRegistered}.
     * @param buyerId the buyer's member id
     * @param invoiceNumber the invoice number in canonical form
     * @param faceValueMinor the face value, in minor units of `currency`
     * @param currency ISO 4217 code, three upper-case ASCII letters
     * @param issueDay the invoice's issue date (UTC day number)
     * @param dueDay the due date (UTC day number)
     * @return receivableId the new receivable's id ({receivableIdOf})
     */
    function register(
        bytes32 buyerId,
        string calldata invoiceNumber,
        uint128 faceValueMinor,
        bytes3 currency,
        uint32 issueDay,
        uint32 dueDay
    ) external returns (bytes32 receivableId);

    /**
     * @dev The supplier withdraws receivable `receivableId` before the buyer confirmed it; its
     * invoice identity is free again.
     *
     * Requirements: the caller is an account of the receivable's supplier, active; the receivable
     * is registered (not confirmed).
     *
     * Emits {ReceivableCancelled}.
     * @param receivableId the receivable
     */
    function cancel(bytes32 receivableId) external;

    /**
     * @dev The buyer refuses receivable `receivableId` (not its invoice, or not with these terms);
     * its invoice identity is free again, so that a squatted identity goes back to its owner.
     *
     * Requirements: the caller is an account of the receivable's buyer, active, with the BUYER
     * role; the receivable is registered (not confirmed).
     *
     * Emits {ReceivableRejected}.
     * @param receivableId the receivable
     */
    function reject(bytes32 receivableId) external;

    /**
     * @dev The buyer confirms it owes receivable `receivableId`.
     *
     * Requirements: the caller is an account of the receivable's buyer, active, with the BUYER
     * role; the receivable is registered and not yet confirmed.
     *
     * Emits {ReceivableConfirmed}.
     * @param receivableId the receivable
     */
    function confirm(bytes32 receivableId) external;

    /**
     * @dev Confirms `receivableId` on the buyer's EIP-712 `ConfirmReceivable` signature by `signer`,
     * over the receivable's terms as registered: supplier, invoice number hash, face value and
     * currency, issue and due dates (a signature over other terms does not verify). `signer` is an
     * account of the buyer: a key (ECDSA) or a contract wallet (ERC-1271). Anyone may relay it.
     *
     * Requirements: `deadline` not passed; `nonce` is the buyer's current nonce for its key
     * ({nonces}); the signature is valid for `signer`, an account of the buyer, active, with the
     * BUYER role; the receivable is registered and not yet confirmed.
     *
     * Emits {ReceivableConfirmed}.
     * @param receivableId the receivable
     * @param signer the approving account of the member: a key (ECDSA) or a contract wallet (ERC-1271)
     * @param nonce the keyed nonce signed (`key << 64 | sequence`, see {nonces})
     * @param deadline the signature's deadline (unix seconds)
     * @param signature the EIP-712 signature, or what the contract wallet's `isValidSignature` takes
     */
    function confirmWithSignature(
        bytes32 receivableId,
        address signer,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /**
     * @dev Splits part `partId` into `amountsMinor.length` parts held by the same member: `partId`
     * keeps `amountsMinor[0]`, each further amount becomes a new part, in order. Returns the new
     * part ids.
     *
     * Requirements: the caller is an account of the part's holder, active; the receivable is
     * confirmed and not yet past its due date; the part is neither financed nor under an open financing request; at least two
     * amounts, each >= {PART_AMOUNT_MIN}, summing exactly to the part's amount; the receivable
     * stays within {PARTS_PER_RECEIVABLE_MAX} parts.
     *
     * Emits one {PartSplit} per new part.
     * @param partId the part
     * @param amountsMinor the amounts of the parts after the split (the first stays with `partId`), in minor units
     * @return newPartIds the ids of the new parts, in order
     */
    function splitPart(bytes32 partId, uint128[] calldata amountsMinor) external returns (bytes32[] memory newPartIds);

    /**
     * @dev Passes part `partId` to member `toId` (a tier-2 supplier, say).
     *
     * Requirements: the caller is an account of the part's holder, active; the receivable is
     * confirmed and not yet past its due date; the part is neither financed nor under an open
     * financing request; `toId` is another active member with the SUPPLIER or FINANCIER role, not
     * the receivable's buyer.
     *
     * Emits {PartTransferred}.
     * @param partId the part
     * @param toId the recipient member
     */
    function transferPart(bytes32 partId, bytes32 toId) external;

    /**
     * @dev The holder asks financier `financierId` to finance part `partId`; this replaces an
     * earlier open request (and voids its offer). The part is locked (no split, no transfer) while
     * the request is open.
     *
     * Requirements: the caller is an account of the part's holder, active, with the SUPPLIER role;
     * the receivable is confirmed; the part is not financed; `financierId` is another active member
     * with the FINANCIER role.
     *
     * Emits {FinancingRequested}.
     * @param partId the part
     * @param financierId the financier member asked
     */
    function requestFinancing(bytes32 partId, bytes32 financierId) external;

    /**
     * @dev The holder withdraws its open financing request on part `partId`, unlocking the part.
     *
     * Requirements: the caller is an account of the part's holder, active; a request is open.
     *
     * Emits {FinancingRequestWithdrawn}.
     * @param partId the part
     */
    function withdrawFinancingRequest(bytes32 partId) external;

    /**
     * @dev The financier named in the open request on `partId` offers terms; a new offer supersedes
     * the previous one. The terms are recorded as offered: the advance is computed off chain
     * (settlement/financing.py) from the part, the rate, the day count and the fee. The offer's id
     * `offerId` is chosen by the caller (the service derives it before sending, so its create answer
     * can name it); the registry keys the offer by it and refuses an id used before.
     *
     * Requirements: the caller is an account of that financier, active, with the FINANCIER role;
     * the receivable is confirmed; `advanceMinor` > 0 and `advanceMinor + feeMinor` <= the part's
     * amount; `dayCountBasis` is {DAY_COUNT_ACT_360} or {DAY_COUNT_ACT_365}; `validUntil` (unix
     * seconds) is not in the past; `offerId` is not zero and was never used ({ReceivableOfferIdTaken}).
     *
     * Emits {FinancingOffered}.
     * @param partId the part
     * @param offerId the offer's id, unique across the registry
     * @param advanceMinor the advance the financier pays the holder, in minor units
     * @param feeMinor the financier's fee, in minor units
     * @param discountRatePpm the yearly discount rate, in parts per million
     * @param dayCountBasis {DAY_COUNT_ACT_360} or {DAY_COUNT_ACT_365}
     * @param validUntil the offer's expiry (unix seconds)
     */
    function offerFinancing(
        bytes32 partId,
        bytes32 offerId,
        uint128 advanceMinor,
        uint128 feeMinor,
        uint32 discountRatePpm,
        uint8 dayCountBasis,
        uint64 validUntil
    ) external;

    /**
     * @dev Makes the offer `terms` on part `partId` on the financier's EIP-712 `FinancingOffer`
     * signature by `signer` (a key, or a contract wallet such as a bank's multisig: ERC-1271), over
     * the offer id, the part (amount, currency, due date) and the terms. Anyone may relay it.
     *
     * Requirements: `deadline` not passed; `nonce` is the financier's current nonce for its key;
     * the signature is valid for `signer`, an account of the financier named in the open request,
     * active, with the FINANCIER role; and those of {offerFinancing}.
     *
     * Emits {FinancingOffered}.
     * @param partId the part
     * @param offerId the offer's id, unique across the registry (signed)
     * @param terms the offer's terms
     * @param signer the approving account of the member: a key (ECDSA) or a contract wallet (ERC-1271)
     * @param nonce the keyed nonce signed (`key << 64 | sequence`, see {nonces})
     * @param deadline the signature's deadline (unix seconds)
     * @param signature the EIP-712 signature, or what the contract wallet's `isValidSignature` takes
     */
    function offerFinancingWithSignature(
        bytes32 partId,
        bytes32 offerId,
        OfferTerms calldata terms,
        address signer,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /**
     * @dev The holder accepts offer `offerId` on part `partId`: the part passes to the financier,
     * financed for good; the financier owes the holder the advance (paid off this contract).
     *
     * Requirements: the caller is an account of the part's holder, active, with the SUPPLIER role;
     * `offerId` is the part's current offer and has not expired; the receivable is confirmed; the
     * financier is still an active member with the FINANCIER role.
     *
     * Emits {FinancingAccepted}.
     * @param partId the part
     * @param offerId the offer accepted (the part's current one)
     */
    function acceptOffer(bytes32 partId, bytes32 offerId) external;

    /**
     * @dev Accepts offer `offerId` on the holder's EIP-712 `AcceptFinancingOffer` signature by
     * `signer` (a key, or a contract wallet: ERC-1271), over the part (amount, currency, due date)
     * and the current offer's terms (financier, advance, fee, rate, day-count basis, validity).
     * Anyone may relay it.
     *
     * Requirements: `deadline` not passed; `nonce` is the holder's current nonce for its key; the
     * signature is valid for `signer`, an account of the part's holder, active, with the SUPPLIER
     * role; and those of {acceptOffer}.
     *
     * Emits {FinancingAccepted}.
     * @param partId the part
     * @param offerId the offer accepted (the part's current one)
     * @param signer the approving account of the member: a key (ECDSA) or a contract wallet (ERC-1271)
     * @param nonce the keyed nonce signed (`key << 64 | sequence`, see {nonces})
     * @param deadline the signature's deadline (unix seconds)
     * @param signature the EIP-712 signature, or what the contract wallet's `isValidSignature` takes
     */
    function acceptOfferWithSignature(
        bytes32 partId,
        bytes32 offerId,
        address signer,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /**
     * @dev Voids the caller's member's unused signatures with key `uint192(nonce >> 64)` and a
     * sequence up to `uint64(nonce)`: the key's next sequence becomes `uint64(nonce) + 1`.
     *
     * Requirements: the caller is an account of an active member; the sequence is not below the
     * key's current one, nor the largest uint64.
     *
     * Emits {NoncesInvalidated}.
     * @param nonce the keyed nonce signed (`key << 64 | sequence`, see {nonces})
     */
    function invalidateNonce(uint256 nonce) external;

    /**
     * @dev The buyer reports that it repaid receivable `receivableId` in full, to each holder the
     * amount of its parts. The parts freeze; none is repaid yet: each becomes repaid when its
     * holder confirms receipt ({confirmRepaymentReceived}), and until then a financier holding it
     * keeps its default remedy. A defaulted receivable repaid late is reported the same way.
     *
     * Requirements: the caller is an account of the receivable's buyer, active, with the BUYER
     * role (the operator cannot report for it); the receivable is confirmed or defaulted, its
     * repayment not yet reported; today is on or after the due date.
     *
     * Emits {RepaymentReported}.
     * @param receivableId the receivable
     */
    function reportRepayment(bytes32 receivableId) external;

    /**
     * @dev The holder of part `partId` confirms it received the buyer's repayment of the part: the
     * part is repaid. When every part is, the receivable is settled (the repaid amounts sum to the
     * face value).
     *
     * Requirements: the caller is an account of the part's holder, active; the buyer reported the
     * repayment; the part is not repaid yet.
     *
     * Emits {PartRepaid}, and {ReceivableSettled} with the last part.
     * @param partId the part
     */
    function confirmRepaymentReceived(bytes32 partId) external;

    /**
     * @dev A financier holding a financed part of `receivableId` that is not repaid declares the
     * receivable defaulted (also after the buyer reported a repayment the financier did not
     * receive).
     *
     * Requirements: the caller is an account of an active member with the FINANCIER role that
     * holds a financed, unrepaid part of the receivable; the receivable is confirmed and overdue
     * (today is after the due date plus {gracePeriodDays}).
     *
     * Emits {ReceivableDefaulted}.
     * @param receivableId the receivable
     */
    function declareDefault(bytes32 receivableId) external;

    /**
     * @dev Receivable `receivableId` as stored (its status is never `Overdue`: see {statusOf}).
     * @param receivableId the receivable
     * @return the receivable
     */
    function getReceivable(bytes32 receivableId) external view returns (Receivable memory);

    /**
     * @dev The status of `receivableId`, `Overdue` when confirmed and past due date plus grace.
     * @param receivableId the receivable
     * @return its status
     */
    function statusOf(bytes32 receivableId) external view returns (ReceivableStatus);

    /**
     * @dev The first day on which `receivableId` is overdue: due date + grace period + 1.
     * @param receivableId the receivable
     * @return the UTC day number
     */
    function overdueFromDay(bytes32 receivableId) external view returns (uint256);

    /**
     * @dev Part `partId`.
     * @param partId the part
     * @return the part
     */
    function getPart(bytes32 partId) external view returns (Part memory);

    /**
     * @dev The financing record of part `partId` (all zero if none was ever requested).
     * @param partId the part
     * @return the financing record
     */
    function getFinancing(bytes32 partId) external view returns (Financing memory);

    /**
     * @dev The part offer `offerId` was made on (zero if no offer has this id). Offers are keyed by
     * their id: an id names one offer on one part, for good.
     * @param offerId the offer
     * @return the part's id
     */
    function partOfOffer(bytes32 offerId) external view returns (bytes32);

    /**
     * @dev All parts of `receivableId`, in index order: ids, holders, amounts, financed flags.
     * @param receivableId the receivable
     * @return ids the part ids
     * @return holderIds the holders' member ids
     * @return amountsMinor the amounts, in minor units
     * @return financed whether each part is financed
     */
    function partsOf(bytes32 receivableId)
        external
        view
        returns (bytes32[] memory ids, bytes32[] memory holderIds, uint128[] memory amountsMinor, bool[] memory financed);

    /**
     * @dev The live receivable of the invoice `invoiceNumberHash` of buyer `buyerId`, or zero.
     * @param buyerId the buyer's member id
     * @param invoiceNumberHash the identity hash of the invoice number ({invoiceNumberHashOf})
     * @return the live receivable's id, or zero
     */
    function receivableOfInvoice(bytes32 buyerId, bytes32 invoiceNumberHash) external view returns (bytes32);

    /**
     * @dev How many times the invoice `invoiceNumberHash` of buyer `buyerId` was registered.
     * @param buyerId the buyer's member id
     * @param invoiceNumberHash the identity hash of the invoice number ({invoiceNumberHashOf})
     * @return the number of registrations
     */
    function registrationsOfInvoice(bytes32 buyerId, bytes32 invoiceNumberHash) external view returns (uint256);

    /**
     * @dev The next EIP-712 nonce of member `memberId` (shared by all its accounts) for `key`:
     * `key << 64 | sequence`, as ERC-4337's keyed nonces. Each flow uses its own key (the service
     * uses the top 192 bits of the receivable or part id), so parallel approvals do not race.
     * @param memberId the member
     * @param key the nonce key (the service uses the top 192 bits of the receivable or part id)
     * @return the member's current nonce for `key`
     */
    function nonces(bytes32 memberId, uint192 key) external view returns (uint256);

    /**
     * @dev The EIP-712 domain separator (name "ReceivableRegistry", version "1").
     * @return the domain separator
     */
    function domainSeparator() external view returns (bytes32);

    /**
     * @dev Today's UTC day number on chain.
     * @return the UTC day number
     */
    function today() external view returns (uint256);

    /**
     * @dev The id of the `index`-th registration of the invoice `invoiceNumberHash` of buyer `buyerId`.
     * @param buyerId the buyer's member id
     * @param invoiceNumberHash the identity hash of the invoice number ({invoiceNumberHashOf})
     * @param index the position (0 first)
     * @return the receivable id
     */
    function receivableIdOf(bytes32 buyerId, bytes32 invoiceNumberHash, uint256 index) external pure returns (bytes32);

    /**
     * @dev The id of the `index`-th part of `receivableId` (index 0: the part created at registration).
     * @param receivableId the receivable
     * @param index the position (0 first)
     * @return the part id
     */
    function partIdAt(bytes32 receivableId, uint256 index) external pure returns (bytes32);

    /**
     * @dev The identity hash of the canonical invoice number `invoiceNumber`: keccak256 of its
     * letters and digits, in order (separators left out). Reverts with
     * {ReceivableInvalidInvoiceNumber} (the offending byte's position) unless `invoiceNumber` is
     * 1 to {INVOICE_NUMBER_LENGTH_MAX} bytes of `A`-`Z`, `0`-`9`, `-`, `/`, `.`, starts and ends
     * with a letter or digit, and has no two separators in a row.
     * @param invoiceNumber the invoice number in canonical form
     * @return keccak256 of the number's letters and digits
     */
    function invoiceNumberHashOf(string calldata invoiceNumber) external pure returns (bytes32);
}
