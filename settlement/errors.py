"""The one catalogue of domain errors, each with a stable problem type.

Every error the service reports to a client is a :class:`LedgerError`; the web layer maps it to an
RFC 9457 ``application/problem+json`` response in one place, using ``type_slug`` (stable: clients
match on it), ``title`` and ``status``. Subclasses also inherit the built-in they resemble, so
plain Python callers can catch ``ValueError`` or ``LookupError``.
"""

from __future__ import annotations

from typing import Any

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


class ValidationError(LedgerError, ValueError):
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


class PayloadTooLargeError(LedgerError, ValueError):
    type_slug = "payload-too-large"
    title = "Request body too large"
    status = 413


class ChainUnavailableError(LedgerError, ConnectionError):
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


# --- Web layer and members (ledger_api, settlement.members, settlement.apikeys) -----------------


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
