"""The one catalogue of domain errors, each with a stable problem type.

Every error the service reports to a client is a :class:`LedgerError`; the web layer maps it to an
RFC 9457 ``application/problem+json`` response in one place, using ``type_slug`` (stable: clients
match on it), ``title`` and ``status``. Subclasses also inherit the built-in they resemble, so
plain Python callers can catch ``ValueError`` or ``LookupError``.
"""

from __future__ import annotations

from typing import Any

from anchors.errors import InvalidInputError, NodeUnavailableError

PROBLEM_TYPE_PREFIX = "urn:ledger:problem:"


class LedgerError(Exception):
    type_slug = "internal-error"
    title = "Internal error"
    status = 500

    def __init__(self, detail: str = "", **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra

    @property
    def type_uri(self) -> str:
        return PROBLEM_TYPE_PREFIX + self.type_slug


class ValidationError(LedgerError, InvalidInputError):
    type_slug = "validation-failed"
    title = "The request is not valid"
    status = 422


class UnsupportedCurrencyError(ValidationError):
    type_slug = "unsupported-currency"
    title = "Unsupported currency"


class InvalidAmountError(ValidationError):
    type_slug = "invalid-amount"
    title = "Invalid amount"


class NotFoundError(LedgerError, LookupError):
    type_slug = "not-found"
    title = "Not found"
    status = 404


class UnknownMemberError(NotFoundError):
    type_slug = "unknown-member"
    title = "Unknown member"


class ConflictError(LedgerError):
    type_slug = "conflict"
    title = "Conflict with the current state"
    status = 409


class DuplicateError(ConflictError):
    type_slug = "duplicate"
    title = "Already exists"


class IdempotencyKeyReusedError(ConflictError):
    type_slug = "idempotency-key-reused"
    title = "Idempotency-Key reused with another request"


class InvalidStateError(ConflictError):
    type_slug = "invalid-state-transition"
    title = "Not allowed in the current state"


class AuthenticationError(LedgerError, PermissionError):
    type_slug = "unauthenticated"
    title = "Missing or invalid API key"
    status = 401


class ForbiddenError(LedgerError, PermissionError):
    type_slug = "forbidden"
    title = "Not allowed for this member"
    status = 403


class MemberSuspendedError(ForbiddenError):
    type_slug = "member-suspended"
    title = "The member is suspended"


class AuthenticationThrottledError(LedgerError):
    """Too many failed authentications from this client address: wait ``retry_after_s`` (sent as
    ``Retry-After``). A request with a valid key is never refused this way."""

    type_slug = "authentication-throttled"
    title = "Too many failed authentications; retry later"
    status = 429

    def __init__(self, detail: str = "", *, retry_after_s: int, **extra: Any) -> None:
        super().__init__(detail, retry_after_s=retry_after_s, **extra)
        self.retry_after_s = retry_after_s


class PayloadTooLargeError(LedgerError, ValueError):
    type_slug = "payload-too-large"
    title = "Request body too large"
    status = 413


class ChainUnavailableError(LedgerError, NodeUnavailableError):
    type_slug = "chain-unavailable"
    title = "The chain is unreachable"
    status = 503


class ChainRevertError(LedgerError):
    """A contract call reverted; ``error_name`` and ``args`` are the decoded custom error."""

    type_slug = "chain-revert"
    title = "The contract refused the transaction"
    status = 422

    def __init__(self, detail: str = "", *, error_name: str | None = None, args: dict | None = None,
                 **extra: Any) -> None:
        super().__init__(detail or (error_name or self.title), error_name=error_name, args=args or {}, **extra)
        self.error_name = error_name
        self.error_args = args or {}


class ChainMismatchError(LedgerError):
    type_slug = "chain-mismatch"
    title = "The deployment manifest belongs to another chain"
    status = 500


class ConfigurationError(LedgerError):
    type_slug = "configuration-error"
    title = "Invalid configuration"
    status = 500


class SigningUnavailableError(LedgerError):
    """The HSM holding a service key cannot sign now (session lost, token removed, bad answer)."""

    type_slug = "signing-unavailable"
    title = "The service's signing device is unavailable"
    status = 503



# --- Payment-provider callbacks (settlement.providers) ------------------------------------------
# A callback is refused with one of these; each provider adapter turns it into the answer that
# provider expects (``ProviderAdapter.nack``), and the web layer may still log the problem type.


class CallbackSignatureInvalidError(AuthenticationError):
    """The notification's signature (or its signing headers) does not verify."""

    type_slug = "callback-signature-invalid"
    title = "Callback signature invalid"


class CallbackUnknownKeyError(CallbackSignatureInvalidError):
    """The notification names a signing key (e.g. a Wechatpay-Serial) the account does not hold."""

    type_slug = "callback-unknown-key"
    title = "Callback signed with an unknown key"


class CallbackStaleError(CallbackSignatureInvalidError):
    """The signed timestamp is outside the accepted window: a replay or a badly skewed clock."""

    type_slug = "callback-stale"
    title = "Callback timestamp outside the accepted window"


class CallbackDecryptionError(CallbackSignatureInvalidError):
    """An encrypted resource failed its AEAD tag: wrong key, or tampered ciphertext."""

    type_slug = "callback-decryption-failed"
    title = "Callback resource could not be decrypted"


class CallbackMalformedError(ValidationError):
    """The body (or a header) is not the provider's wire format."""

    type_slug = "callback-malformed"
    title = "Callback body malformed"
    status = 400


class CallbackUnknownEventError(ValidationError):
    """An authentic notification of a type or status this adapter cannot classify."""

    type_slug = "callback-unknown-event"
    title = "Callback event not recognised"


class CallbackAccountMismatchError(ForbiddenError):
    """An authentic notification addressed to another merchant account or app."""

    type_slug = "callback-account-mismatch"
    title = "Callback belongs to another account"


class UnsupportedMediaTypeError(LedgerError, ValueError):
    type_slug = "unsupported-media-type"
    title = "Unsupported content type"
    status = 415


class UnknownProviderError(NotFoundError):
    type_slug = "unknown-provider"
    title = "Unknown payment provider"


__all__ = [name for name in dir() if name.endswith("Error")] + ["PROBLEM_TYPE_PREFIX"]


class StatementFormatError(ValidationError):
    """A statement file that cannot be read at all (unknown format, missing header, broken XML).

    Broken *rows* are never raised: parsers report them as per-row errors and keep going.
    """

    type_slug = "statement-format"
    title = "The statement file cannot be read"


class UnsafeStatementError(StatementFormatError):
    """A statement file refused for safety (XML DOCTYPE/ENTITY declarations, size over the limit)."""

    type_slug = "statement-unsafe"
    title = "The statement file was refused as unsafe"


__all__ += ["StatementFormatError", "UnsafeStatementError"]


# --- Web layer and members (ledger_api, settlement.domains.members.service, settlement.domains.members.apikeys) -----------------


class BadRequestError(ValidationError):
    """The request could not be read at all (e.g. a body that is not JSON)."""

    type_slug = "bad-request"
    title = "Bad request"
    status = 400


class RouteNotFoundError(NotFoundError):
    """No route answers this path."""

    type_slug = "route-not-found"
    title = "No such resource"


class MethodNotAllowedError(LedgerError):
    type_slug = "method-not-allowed"
    title = "Method not allowed on this resource"
    status = 405


class UnknownApiKeyError(NotFoundError):
    type_slug = "unknown-api-key"
    title = "Unknown API key"


class UnknownRoleError(ValidationError):
    type_slug = "unknown-role"
    title = "Unknown member role"


class InvalidCountryError(ValidationError):
    type_slug = "invalid-country"
    title = "Not an ISO 3166-1 alpha-2 country code"


__all__ += ["BadRequestError", "RouteNotFoundError", "MethodNotAllowedError", "UnknownApiKeyError",
            "UnknownRoleError", "InvalidCountryError"]


# --- Cross-border settlements, journal and netting (settlement.domains.settlements) ---------------------


class IdempotencyKeyRequiredError(ValidationError):
    type_slug = "idempotency-key-required"
    title = "The Idempotency-Key header is required"
    status = 400


class InvalidCursorError(ValidationError):
    type_slug = "invalid-cursor"
    title = "Invalid pagination cursor"


class FxRateNotRepresentableError(ValidationError):
    """The rate does not convert exactly to the contract's minor-to-minor 1e12 fixed point."""

    type_slug = "fx-rate-not-representable"
    title = "FX rate not representable at the ledger's scale"


class FxInconsistentError(ValidationError):
    """The target amount is not the source amount converted at the rate, rounded half up."""

    type_slug = "fx-inconsistent"
    title = "Target amount inconsistent with the FX rate"


class InvalidValueDateError(ValidationError):
    type_slug = "invalid-value-date"
    title = "Value date outside the accepted window"


class InvalidPurposeCodeError(ValidationError):
    type_slug = "invalid-purpose-code"
    title = "Invalid purpose code"


class InvalidReferenceError(ValidationError):
    type_slug = "invalid-reference"
    title = "Invalid reference"


class UnknownPayeeError(ValidationError):
    type_slug = "unknown-payee"
    title = "The payee is not a member"


class PayeeNotActiveError(ValidationError):
    type_slug = "payee-not-active"
    title = "The payee is not an active member"


class SelfPaymentError(ValidationError):
    type_slug = "self-payment"
    title = "Payer and payee are the same member"


class PaidAmountMismatchError(ValidationError):
    type_slug = "paid-amount-mismatch"
    title = "The amount paid is not the settlement's target amount"


class RefundExceedsPaidError(ValidationError):
    type_slug = "refund-exceeds-paid"
    title = "Refunds would exceed the amount paid"


class SettlementBatchSizeError(ValidationError):
    type_slug = "batch-size"
    title = "Batch size out of bounds"


class SettlementNotFoundError(NotFoundError):
    type_slug = "settlement-not-found"
    title = "No such settlement"


class NettingCycleNotFoundError(NotFoundError):
    type_slug = "netting-cycle-not-found"
    title = "No such netting cycle"


class SettlementExistsError(DuplicateError):
    type_slug = "settlement-exists"
    title = "A settlement with this client reference already exists"


class PaymentReferenceReusedError(DuplicateError):
    type_slug = "payment-reference-reused"
    title = "The payment reference belongs to another settlement"


class RefundExistsError(DuplicateError):
    type_slug = "refund-exists"
    title = "A refund with this reference already exists"


class SettlementPendingOnChainError(ConflictError):
    """The settlement's (or cycle's) last operation is not confirmed on chain yet: retry later."""

    type_slug = "pending-on-chain"
    title = "The previous operation is not confirmed on chain yet"


class NothingToNetError(ConflictError):
    type_slug = "nothing-to-net"
    title = "No paid settlement is waiting to be netted in this currency"


class NoCustodialAccountError(ConflictError):
    type_slug = "no-custodial-account"
    title = "The service holds no signing key for this member"


class NotSettlementPartyError(ForbiddenError):
    type_slug = "not-settlement-party"
    title = "Only another party to the settlement may do this"


class PaymentEvidenceUsedError(ConflictError):
    """One provider transaction evidences one payment (or one refund) only."""

    type_slug = "payment-evidence-used"
    title = "This provider transaction already evidenced another payment"


class NotAttestorError(ForbiddenError):
    """Payment evidence (payments, provider refunds, net payments into a cycle) is attested by the
    operator, which verified the provider's signature, never by a party to the payment."""

    type_slug = "not-attestor"
    title = "Only the operator, not a party to the payment, attests payment evidence"


class RefundNotByPayeeError(ForbiddenError):
    """A refund is made by the payee (who returns the money), or evidenced by the provider's refund
    notification; the operator alone cannot refund."""

    type_slug = "refund-not-by-payee"
    title = "Only the payee refunds; the operator relays only a provider's refund notification"


class PartyNotActiveError(ConflictError):
    """A party to the payment (or a member of the cycle) is suspended: no money moves for it."""

    type_slug = "party-not-active"
    title = "A party to this payment is not an active member"


class ValueDateNotReachedError(ConflictError):
    type_slug = "value-date-not-reached"
    title = "The settlement's value date has not come: it cannot be paid yet"


class NettingPaymentUnattestedError(ConflictError):
    """A cycle settles only when every net payer's payment into it is evidenced and attested."""

    type_slug = "netting-payment-unattested"
    title = "Not every net payer's payment into the cycle is attested"


class NetPaymentNotOwedError(ConflictError):
    type_slug = "net-payment-not-owed"
    title = "This member owes nothing into the cycle, or its payment is already attested"


class JournalImbalanceError(LedgerError):
    """A journal transaction whose debits and credits differ in some currency: a bug, never input."""

    type_slug = "journal-imbalance"
    title = "Journal transaction not balanced"
    status = 500


__all__ += ["IdempotencyKeyRequiredError", "InvalidCursorError", "FxRateNotRepresentableError",
            "FxInconsistentError", "InvalidValueDateError", "InvalidPurposeCodeError", "InvalidReferenceError",
            "UnknownPayeeError", "PayeeNotActiveError", "SelfPaymentError", "PaidAmountMismatchError",
            "RefundExceedsPaidError", "SettlementBatchSizeError", "SettlementNotFoundError",
            "NettingCycleNotFoundError", "SettlementExistsError", "PaymentReferenceReusedError",
            "RefundExistsError", "SettlementPendingOnChainError", "NothingToNetError", "NoCustodialAccountError",
            "NotSettlementPartyError", "JournalImbalanceError", "PaymentEvidenceUsedError", "NotAttestorError",
            "RefundNotByPayeeError", "PartyNotActiveError", "ValueDateNotReachedError",
            "NettingPaymentUnattestedError", "NetPaymentNotOwedError"]


# --- Anchoring: provenance events, Merkle batches, journal anchors (settlement.domains.anchoring) --------


class ProvenanceEventInvalidError(ValidationError):
    """An event of a posted batch breaks a rule of the leaf schema; ``index`` and ``field`` say where."""

    type_slug = "provenance-event-invalid"
    title = "Provenance event invalid"


class ProvenanceBatchTooLargeError(PayloadTooLargeError):
    """More events, or more bytes of events, than one request may carry."""

    type_slug = "provenance-batch-too-large"
    title = "Too many provenance events in one request"


class ProvenanceEventConflictError(DuplicateError):
    """An event id already recorded with other content (the same content is accepted idempotently)."""

    type_slug = "provenance-event-conflict"
    title = "Provenance event id already used for another event"


class UnknownLotError(NotFoundError):
    type_slug = "unknown-lot"
    title = "Unknown lot"


class UnknownProvenanceEventError(NotFoundError):
    type_slug = "unknown-provenance-event"
    title = "Unknown provenance event"


class UnknownAnchorBatchError(NotFoundError):
    type_slug = "unknown-anchor-batch"
    title = "Unknown anchor batch"


class ProvenanceEventPendingError(ConflictError):
    """The event is recorded but not in a Merkle batch yet: no proof exists so far."""

    type_slug = "provenance-event-pending"
    title = "Provenance event not batched yet"


class JournalRecordInvalidError(ValidationError):
    """A journal record cannot be digested (not canonical JSON, too large, bad kind or id)."""

    type_slug = "journal-record-invalid"
    title = "Journal record invalid"


class AnchorStoreInconsistentError(LedgerError):
    """A stored batch no longer rebuilds to its anchored root: the store was altered."""

    type_slug = "anchor-store-inconsistent"
    title = "Stored batch does not match its anchored root"
    status = 500


__all__ += ["ProvenanceEventInvalidError", "ProvenanceBatchTooLargeError", "ProvenanceEventConflictError",
            "UnknownLotError", "UnknownProvenanceEventError", "UnknownAnchorBatchError",
            "ProvenanceEventPendingError", "JournalRecordInvalidError", "AnchorStoreInconsistentError"]


# --- Supply-chain finance: receivables (settlement.domains.receivables) ----------------------------------


class ReceivableNotFoundError(NotFoundError):
    """No such receivable, or the caller is not a party to it (existence is not revealed)."""

    type_slug = "receivable-not-found"
    title = "No such receivable"


class ReceivablePartNotFoundError(NotFoundError):
    type_slug = "receivable-part-not-found"
    title = "No such part of this receivable"


class InvoiceAlreadyRegisteredError(DuplicateError):
    """The same invoice (after canonicalisation) is registered already: the double-financing guard."""

    type_slug = "invoice-already-registered"
    title = "This invoice is already registered"


class InvalidInvoiceError(ValidationError):
    type_slug = "invalid-invoice"
    title = "Invalid invoice"


class InvalidCounterpartyError(ValidationError):
    """The named buyer, recipient or financier is unknown, not active, lacks the role, or is the caller."""

    type_slug = "invalid-counterparty"
    title = "Invalid counterparty"


class ReceivableWrongStatusError(InvalidStateError):
    """Not allowed in the receivable's status (unconfirmed, settled, defaulted, overdue, ...)."""

    type_slug = "receivable-wrong-status"
    title = "Not allowed in the receivable's status"


class ReceivableOperationPendingError(ConflictError):
    """An earlier operation on the receivable is not on chain yet: retry once it is confirmed."""

    type_slug = "receivable-operation-pending"
    title = "Another operation on this receivable is still pending on chain"


class NotReceivableBuyerError(ForbiddenError):
    type_slug = "not-receivable-buyer"
    title = "Only the receivable's buyer may do this"


class NotReceivableSupplierError(ForbiddenError):
    type_slug = "not-receivable-supplier"
    title = "Only the receivable's supplier may do this"


class NotPartHolderError(ForbiddenError):
    type_slug = "not-part-holder"
    title = "Only the holder of the part may do this"


class NotRequestedFinancierError(ForbiddenError):
    type_slug = "not-requested-financier"
    title = "Only the financier asked to finance the part may do this"


class NotPartFinancierError(ForbiddenError):
    type_slug = "not-part-financier"
    title = "Only a financier holding a financed part may do this"


class PartAlreadyFinancedError(ConflictError):
    type_slug = "part-already-financed"
    title = "The part is financed already"


class PartLockedError(ConflictError):
    type_slug = "part-locked"
    title = "The part has an open financing request; withdraw it first"


class AmountExceedsHoldingError(ValidationError):
    type_slug = "amount-exceeds-holding"
    title = "More than the part holds"


class InvalidSplitError(ValidationError):
    type_slug = "invalid-split"
    title = "Invalid split"


class PartTooSmallError(ValidationError):
    type_slug = "part-too-small"
    title = "Part below the minimum part size"


class TooManyPartsError(ValidationError):
    type_slug = "too-many-parts"
    title = "The receivable would have too many parts"


class NoFinancingRequestError(ConflictError):
    type_slug = "no-financing-request"
    title = "The part has no open financing request"


class InvalidOfferError(ValidationError):
    type_slug = "invalid-offer"
    title = "Invalid financing offer"


class OfferNotCurrentError(ConflictError):
    type_slug = "offer-not-current"
    title = "Not the part's current offer"


class OfferExpiredError(ConflictError):
    type_slug = "offer-expired"
    title = "The offer has expired"


class SignatureInvalidError(ValidationError):
    """Malformed, or recovers to an account that is not the required party's."""

    type_slug = "signature-invalid"
    title = "The signature does not verify for the required party"


class SignatureExpiredError(ValidationError):
    type_slug = "signature-expired"
    title = "The signature's deadline has passed"


class ReceivableNotMaturedError(ConflictError):
    type_slug = "receivable-not-matured"
    title = "The receivable is not due yet"


class ReceivableDueError(ConflictError):
    """The receivable is past its due date: its parts can be neither split, transferred nor financed."""

    type_slug = "receivable-due"
    title = "The receivable is past its due date: its parts no longer move"


class RepaymentNotReportedError(ConflictError):
    """A holder confirms receipt of a repayment the buyer has not reported."""

    type_slug = "repayment-not-reported"
    title = "The buyer has not reported the repayment yet"


class PartAlreadyRepaidError(ConflictError):
    type_slug = "part-already-repaid"
    title = "This part is repaid already"


class ReceivableNotOverdueError(ConflictError):
    type_slug = "receivable-not-overdue"
    title = "The receivable is not overdue (due date plus grace period)"


class EvidenceInvalidError(ValidationError):
    type_slug = "evidence-invalid"
    title = "Invalid evidence"


__all__ += ["ReceivableNotFoundError", "ReceivablePartNotFoundError", "InvoiceAlreadyRegisteredError",
            "InvalidInvoiceError", "InvalidCounterpartyError", "ReceivableWrongStatusError",
            "ReceivableOperationPendingError", "NotReceivableBuyerError", "NotReceivableSupplierError",
            "NotPartHolderError", "NotRequestedFinancierError", "NotPartFinancierError",
            "PartAlreadyFinancedError", "PartLockedError", "AmountExceedsHoldingError", "InvalidSplitError",
            "PartTooSmallError", "TooManyPartsError", "NoFinancingRequestError", "InvalidOfferError",
            "OfferNotCurrentError", "OfferExpiredError", "SignatureInvalidError", "SignatureExpiredError",
            "ReceivableNotMaturedError", "ReceivableNotOverdueError", "EvidenceInvalidError", "ReceivableDueError",
            "RepaymentNotReportedError", "PartAlreadyRepaidError"]


# --- Callback ingestion and reconciliation store (settlement.domains.payments, settlement.domains.reconciliation)


class UnknownProviderAccountError(NotFoundError):
    """No active account of that name at that provider (callbacks are refused, never guessed)."""

    type_slug = "unknown-provider-account"
    title = "Unknown payment-provider account"


class ProviderAccountExistsError(DuplicateError):
    type_slug = "provider-account-exists"
    title = "This provider account already exists"


class ProviderAccountInvalidError(ValidationError):
    """Account material the service cannot use: a missing field, a key that does not load, or a
    private key (the service holds only the providers' public halves)."""

    type_slug = "provider-account-invalid"
    title = "Invalid payment-provider account"


class CallbackStoreUnavailableError(LedgerError):
    """The notification verified but could not be recorded; the provider is asked to retry."""

    type_slug = "callback-store-unavailable"
    title = "Callback could not be recorded; retry later"
    status = 503


class StatementNotFoundError(NotFoundError):
    type_slug = "statement-not-found"
    title = "No such statement import"


class ReconciliationRunNotFoundError(NotFoundError):
    type_slug = "reconciliation-run-not-found"
    title = "No such reconciliation run"


class ReconciliationExceptionNotFoundError(NotFoundError):
    type_slug = "reconciliation-exception-not-found"
    title = "No such reconciliation exception"


class ExceptionAlreadyResolvedError(ConflictError):
    """Resolving an item that is already resolved; reopen it first (action ``reopened``)."""

    type_slug = "exception-already-resolved"
    title = "The exception is already resolved"


class ExceptionNotResolvedError(ConflictError):
    type_slug = "exception-not-resolved"
    title = "Only a resolved exception can be reopened"


__all__ += ["UnknownProviderAccountError", "ProviderAccountExistsError", "ProviderAccountInvalidError",
            "CallbackStoreUnavailableError", "StatementNotFoundError", "ReconciliationRunNotFoundError",
            "ReconciliationExceptionNotFoundError", "ExceptionAlreadyResolvedError", "ExceptionNotResolvedError"]


# -- the journal of records (issue 14) ---------------------------------------------------------------


class UnknownJournalRecordError(NotFoundError):
    """No journal version of this record (kind and id)."""

    type_slug = "unknown-journal-record"
    title = "Unknown journal record"


class JournalRecordPendingError(ConflictError):
    """The record's version is journaled but not in a batch yet: no proof exists so far."""

    type_slug = "journal-record-pending"
    title = "Journal record not batched yet"


class NoAnchoredJournalBatchError(ConflictError):
    """A figure "as of an anchored batch" was asked for, and that batch is not anchored (yet)."""

    type_slug = "no-anchored-journal-batch"
    title = "No such anchored journal batch"


__all__ += ["UnknownJournalRecordError", "JournalRecordPendingError", "NoAnchoredJournalBatchError"]
# --- Governance, members' keys and own-key intents (settlement.domains.governance, members, pipeline.intents)


class BootstrapSealedError(ConflictError):
    """The registry's bootstrap window is closed: members are onboarded through governance now."""

    type_slug = "bootstrap-sealed"
    title = "The bootstrap window is sealed; this goes through governance"


class ProposalNotFoundError(NotFoundError):
    type_slug = "proposal-not-found"
    title = "No such governance proposal"


class ProposalStateError(ConflictError):
    """Not possible in the proposal's state (executed, cancelled, stale, already approved, ...)."""

    type_slug = "proposal-state"
    title = "Not possible in the proposal's state"


class QuorumNotMetError(ConflictError):
    type_slug = "quorum-not-met"
    title = "Not enough governors have approved"


class GovernanceDelayError(ConflictError):
    """The timelock's delay has not passed: ``earliest_execution_at`` says when it has."""

    type_slug = "governance-delay-pending"
    title = "The governance delay has not passed yet"


class NotAGovernorError(ForbiddenError):
    type_slug = "not-a-governor"
    title = "Only a governor (of the calling member) may do this"


class NoCustodialGovernorError(ConflictError):
    type_slug = "no-custodial-governor"
    title = "The service holds no key of this governor; approve with the governor's own signature"


class MemberKeysForbiddenError(ForbiddenError):
    """A member's keys change only with that member's consent: nobody else may ask for it."""

    type_slug = "member-keys-own-only"
    title = "Only the member itself may change its keys"


class IntentNotFoundError(NotFoundError):
    type_slug = "intent-not-found"
    title = "No such intent"


class IntentStateError(ConflictError):
    type_slug = "intent-state"
    title = "Not possible in the intent's state"


class IntentOutOfOrderError(ConflictError):
    """Intents of one account are relayed in forwarder-nonce order: sign the earlier ones first."""

    type_slug = "intent-out-of-order"
    title = "An earlier intent of this account is still waiting for its signature"


class NoOwnAccountError(ConflictError):
    type_slug = "no-own-account"
    title = "The member has no account of its own to sign with"


__all__ += ["BootstrapSealedError", "ProposalNotFoundError", "ProposalStateError", "QuorumNotMetError",
            "GovernanceDelayError", "NotAGovernorError", "NoCustodialGovernorError", "MemberKeysForbiddenError",
            "IntentNotFoundError", "IntentStateError", "IntentOutOfOrderError", "NoOwnAccountError"]


# -- the store and readiness (issue 11) ----------------------------------------------------------------


class StoreUnavailableError(LedgerError):
    """The store could not be reached, or its single writer stayed busy past the wait bound
    (SQLite); nothing was written. Safe to retry with the same Idempotency-Key."""

    type_slug = "store-unavailable"
    title = "The store is unavailable or busy; retry later"
    status = 503


class NotReadyError(LedgerError):
    """GET /ready: one or more readiness checks failed; the problem lists them in ``reasons``."""

    type_slug = "not-ready"
    title = "The service is not ready"
    status = 503


__all__ += ["StoreUnavailableError", "NotReadyError"]
