"""The service's keys in a PKCS#11 token (a hardware security module; SoftHSM2 in tests).

A key that lives here is generated inside the token (``C_GenerateKeyPair``, CKM_EC_KEY_PAIR_GEN
on the named curve secp256k1) as a sensitive, non-extractable private key, and the token signs
with it (CKM_ECDSA over the 32-byte transaction hash). The service holds only what names the key
(a random CKA_ID, kept in the vault as a *reference*), its public point and address, and the PIN
that opens the token. The private scalar never enters this process or its files; the token
refuses to give it out (C_GetAttributeValue of CKA_VALUE: CKR_ATTRIBUTE_SENSITIVE), and a key is
only used if the token vouches that it was always sensitive and never extractable.

The token signs the textbook way: (r, s) with s possibly in the upper half and no recovery id.
:func:`settlement.chain.signing.ethereum_signature` turns that into an Ethereum signature (low
s, recovery id found by recovering the public key for both ids and comparing the address with
the one computed from the key's CKA_EC_POINT), which also verifies what the token returned.

One logged-in session per token, shared by the signers of its keys and serialised by a lock (a
PKCS#11 session is not for concurrent use); a session the token dropped is reopened once per call.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import coincurve
import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.util.ec import decode_ecdsa_signature

from settlement.chain.signing import HashSigner, address_of, ethereum_signature, to_checksum
from settlement.core.errors import ConfigurationError, SigningUnavailableError

log = logging.getLogger("ledger.hsm")

# DER of the named-curve OID 1.3.132.0.10 (secp256k1), the CKA_EC_PARAMS of every key here.
SECP256K1_EC_PARAMS = bytes.fromhex("06052b8104000a")
KEY_ID_BYTES = 16  # random CKA_ID naming a key pair; what the vault keeps
REFERENCE_FORMAT = b"\x02"  # a vault blob naming a key in the token (0x01: an encrypted key)
TOKEN_LABEL_CHARS_MAX = 32  # CK_TOKEN_INFO.label is 32 bytes
KEY_LABEL_CHARS_MAX = 64
PIN_CHARS_MAX = 255
REOPEN_ATTEMPTS_MAX = 1  # per call: a dropped session is reopened once, then the call fails
KEY_OBJECTS_MAX = 2  # a search for one CKA_ID reads at most this many objects (expects one)
SIGNATURE_BYTES_MAX = 80  # raw r||s is 64 bytes; DER at most 72

# Errors after which the session (not the key, not the request) is the problem: reopen and retry.
_SESSION_LOST = (p11.SessionHandleInvalid, p11.SessionClosed, p11.UserNotLoggedIn, p11.DeviceRemoved,
                 p11.TokenNotPresent, p11.DeviceError, p11.KeyHandleInvalid, p11.ObjectHandleInvalid)
# The private key's attributes that together say it was made in the token and never left it.
_MUST_HOLD = {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.ALWAYS_SENSITIVE: True,
              Attribute.NEVER_EXTRACTABLE: True, Attribute.SIGN: True}

T = TypeVar("T")

# (module, token label) -> SHA-256 of the PIN this process logged in with; see HsmToken._open.
_LOGINS: dict[tuple[str, str], bytes] = {}


def read_pin(pin: str | None, pin_file: Path | None) -> str:
    """The user PIN from LEDGER_HSM_PIN or from LEDGER_HSM_PIN_FILE (owner-only, like the KEK
    file), exactly one of them. The PIN never appears in an error or a log line."""
    if (pin is None) == (pin_file is None):
        raise ConfigurationError("set exactly one of LEDGER_HSM_PIN and LEDGER_HSM_PIN_FILE")
    if pin_file is not None:
        try:
            mode = pin_file.stat().st_mode & 0o777
        except OSError as exc:
            raise ConfigurationError(f"cannot read the HSM PIN file {pin_file}: {exc.strerror}") from None
        if mode & 0o077:
            raise ConfigurationError(f"{pin_file} must be readable by its owner only (chmod 600), is {oct(mode)}")
        pin = pin_file.read_text().rstrip("\r\n")
    assert pin is not None
    if not 1 <= len(pin) <= PIN_CHARS_MAX:
        raise ConfigurationError(f"the HSM PIN must be 1..{PIN_CHARS_MAX} characters")
    return pin


def point_of(ec_point: bytes) -> bytes:
    """The uncompressed public point (65 bytes, 0x04 || X || Y) from a CKA_EC_POINT, which PKCS#11
    defines as the DER OCTET STRING around it (some tokens give the bare point); checked to be on
    the curve."""
    if len(ec_point) == 67 and ec_point[:2] == b"\x04\x41":
        ec_point = ec_point[2:]
    if len(ec_point) != 65 or ec_point[0] != 4:
        raise ConfigurationError("the token's CKA_EC_POINT is not an uncompressed secp256k1 point")
    try:
        coincurve.PublicKey(ec_point)
    except ValueError:
        raise ConfigurationError("the token's CKA_EC_POINT is not on secp256k1") from None
    return ec_point


def signature_rs(signature: bytes) -> tuple[int, int]:
    """(r, s) from what CKM_ECDSA returns: r || s, 32 bytes each (PKCS#11), or the DER
    ECDSA-Sig-Value some interfaces give instead."""
    if len(signature) == 64:
        raw = signature
    elif 8 <= len(signature) <= SIGNATURE_BYTES_MAX and signature[0] == 0x30:
        try:
            raw = decode_ecdsa_signature(signature)
        except ValueError:
            raise SigningUnavailableError("the token returned a malformed ECDSA signature") from None
        if len(raw) != 64:
            raise SigningUnavailableError("the token returned an ECDSA signature of the wrong size")
    else:
        raise SigningUnavailableError(f"the token returned a {len(signature)}-byte signature, not r || s")
    return int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")


class HsmToken:
    """One PKCS#11 token, logged in as its user: generates keys, finds them, signs with them."""

    def __init__(self, module_path: Path | str, token_label: str, pin: str) -> None:
        if not 1 <= len(token_label) <= TOKEN_LABEL_CHARS_MAX:
            raise ConfigurationError(f"LEDGER_HSM_TOKEN_LABEL must be 1..{TOKEN_LABEL_CHARS_MAX} characters")
        path = Path(module_path)
        if not path.is_file():
            raise ConfigurationError(f"LEDGER_HSM_MODULE {path} is not a file (the token's PKCS#11 library)")
        try:
            self._lib = pkcs11.lib(str(path))
        except p11.PKCS11Error as exc:
            raise ConfigurationError(f"cannot load the PKCS#11 module {path}: {exc}") from None
        self.module_path = path
        self.label = token_label
        self._pin = pin
        self._pin_digest = hashlib.sha256(pin.encode()).digest()
        self._login_key = (str(path.resolve()), token_label)
        self._lock = threading.Lock()
        self._keys: dict[bytes, Any] = {}  # CKA_ID -> private key object of the current session
        self._session: Any = None
        self._open()
        mechanisms = self._token.slot.get_mechanisms()
        missing = [m.name for m in (Mechanism.EC_KEY_PAIR_GEN, Mechanism.ECDSA) if m not in mechanisms]
        if missing:
            self.close()
            raise ConfigurationError(f"token {token_label!r} does not offer {', '.join(missing)}")

    def __repr__(self) -> str:
        return f"HsmToken({self.label!r} via {self.module_path.name}, <pin hidden>)"

    def _open(self) -> None:
        try:
            self._token = self._lib.get_token(token_label=self.label)
            try:
                self._session = self._token.open(rw=True, user_pin=self._pin)
                _LOGINS[self._login_key] = self._pin_digest
            except p11.UserAlreadyLoggedIn:
                # PKCS#11 logs in per application, not per session: another HsmToken of this
                # process holds the login already, and this session shares it, if its PIN is the
                # one that logged in. (Closing that token logs both out; the next call here then
                # sees UserNotLoggedIn and logs in again with its own PIN.)
                if not hmac.compare_digest(_LOGINS.get(self._login_key, b""), self._pin_digest):
                    raise p11.PinIncorrect() from None
                self._session = self._token.open(rw=True)
        except p11.NoSuchToken:
            raise ConfigurationError(f"no PKCS#11 token labelled {self.label!r} in {self.module_path}") from None
        except p11.MultipleTokensReturned:
            raise ConfigurationError(f"more than one token labelled {self.label!r}: labels must be unique") from None
        except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange):
            raise ConfigurationError(f"the token {self.label!r} refused the PIN") from None
        except p11.PinLocked:
            raise ConfigurationError(f"the token {self.label!r} has locked its user PIN") from None
        except p11.PKCS11Error as exc:
            raise SigningUnavailableError(f"cannot open the token {self.label!r}: {type(exc).__name__}") from None
        self._keys.clear()  # object handles belong to the session that found them

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                try:
                    self._session.close()
                except p11.PKCS11Error:
                    pass  # the token is gone already: nothing to log out of
                self._session = None
            self._keys.clear()

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn`` under the lock; a lost session is reopened and ``fn`` tried again (bounded)."""
        with self._lock:
            for attempt in range(REOPEN_ATTEMPTS_MAX + 1):
                try:
                    if self._session is None:
                        self._open()
                    return fn()
                except _SESSION_LOST as exc:
                    log.warning("token %r: %s during %s; reopening the session", self.label,
                                type(exc).__name__, what)
                    self._session = None
                    self._keys.clear()
                    if attempt == REOPEN_ATTEMPTS_MAX:
                        raise SigningUnavailableError(f"token {self.label!r} unavailable during {what}: "
                                                      f"{type(exc).__name__}") from None
                except p11.PKCS11Error as exc:  # any other refusal: reported, never a raw RuntimeError
                    raise SigningUnavailableError(f"token {self.label!r} failed {what}: {type(exc).__name__}") from None
            raise AssertionError("unreachable")

    # -- keys -----------------------------------------------------------------------------------

    def generate(self, label: str) -> tuple[bytes, str]:
        """A new secp256k1 key pair made inside the token: (its CKA_ID, its checksummed address)."""
        if not 1 <= len(label) <= KEY_LABEL_CHARS_MAX:
            raise ConfigurationError(f"a key label is 1..{KEY_LABEL_CHARS_MAX} characters")
        key_id = secrets.token_bytes(KEY_ID_BYTES)

        def make() -> tuple[Any, Any]:
            try:
                return self._session.generate_keypair(
                    KeyType.EC, id=key_id, label=label, store=True,
                    capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,  # no DERIVE, no DECRYPT
                    public_template={Attribute.EC_PARAMS: SECP256K1_EC_PARAMS},
                    private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                                      Attribute.PRIVATE: True})
            except (p11.DomainParamsInvalid, p11.TemplateInconsistent, p11.AttributeValueInvalid) as exc:
                raise ConfigurationError(f"the token {self.label!r} refused a secp256k1 key "
                                         f"({type(exc).__name__}); it may not support the curve") from None

        public, private = self._call("key generation", make)
        address = to_checksum(address_of(point_of(public[Attribute.EC_POINT])))
        self._call("key check", lambda: self._check_private(private, key_id))
        with self._lock:
            self._keys[key_id] = private
        log.info("token %r: generated key %s for %s (%s)", self.label, key_id.hex(), address, label)
        return key_id, address

    def _check_private(self, private: Any, key_id: bytes) -> None:
        for attribute, wanted in _MUST_HOLD.items():
            if private[attribute] != wanted:
                raise ConfigurationError(f"key {key_id.hex()} in token {self.label!r} has {attribute.name} "
                                         f"{private[attribute]}, not {wanted}: it is or was extractable")
        if private[Attribute.EC_PARAMS] != SECP256K1_EC_PARAMS:
            raise ConfigurationError(f"key {key_id.hex()} in token {self.label!r} is not on secp256k1")

    def _find(self, object_class: ObjectClass, key_id: bytes) -> Any:
        found = []
        for obj in self._session.get_objects({Attribute.CLASS: object_class, Attribute.ID: key_id,
                                              Attribute.KEY_TYPE: KeyType.EC}):
            found.append(obj)
            if len(found) >= KEY_OBJECTS_MAX:
                break
        if len(found) != 1:
            raise ConfigurationError(f"token {self.label!r} holds {'no' if not found else 'more than one'} "
                                     f"{object_class.name.lower().replace('_', ' ')} with id {key_id.hex()}")
        return found[0]

    def _private(self, key_id: bytes) -> Any:
        """The private key object for ``key_id`` in the current session (checked once per session)."""
        private = self._keys.get(key_id)
        if private is None:
            private = self._find(ObjectClass.PRIVATE_KEY, key_id)
            self._check_private(private, key_id)
            self._keys[key_id] = private
        return private

    def address(self, key_id: bytes) -> str:
        """The address of the key pair ``key_id``, computed from its public key's CKA_EC_POINT."""
        def read() -> bytes:
            public = self._find(ObjectClass.PUBLIC_KEY, key_id)
            if public[Attribute.EC_PARAMS] != SECP256K1_EC_PARAMS:
                raise ConfigurationError(f"key {key_id.hex()} in token {self.label!r} is not on secp256k1")
            self._private(key_id)  # exists, and vouched for as never extractable
            return public[Attribute.EC_POINT]

        return to_checksum(address_of(point_of(self._call("key lookup", read))))

    def sign_digest(self, key_id: bytes, digest: bytes) -> bytes:
        """CKM_ECDSA over a 32-byte digest with the key ``key_id``: the token's raw answer."""
        if len(digest) != 32:
            raise ValueError("CKM_ECDSA signs a 32-byte hash here")
        return self._call("signing", lambda: self._private(key_id).sign(digest, mechanism=Mechanism.ECDSA))

    def signer(self, key_id: bytes, address: str | None = None) -> HsmSigner:
        """A signer for the key ``key_id``; when ``address`` is given (what the service recorded
        for it), the key must have that address."""
        actual = self.address(key_id)
        if address is not None and actual != address:
            raise ConfigurationError(f"key {key_id.hex()} in token {self.label!r} belongs to {actual}, not {address}")
        return HsmSigner(self, key_id, actual)

    # -- vault references -----------------------------------------------------------------------

    @staticmethod
    def reference(key_id: bytes) -> bytes:
        return REFERENCE_FORMAT + key_id

    @staticmethod
    def key_id_of(reference: bytes) -> bytes:
        if len(reference) != 1 + KEY_ID_BYTES or reference[:1] != REFERENCE_FORMAT:
            raise ConfigurationError("not a reference to a key in the HSM")
        return reference[1:]


class HsmSigner(HashSigner):
    """Signs transactions with a key that stays in a PKCS#11 token. Holds the key's id and
    address, never the key: ``_sign_hash`` asks the token and converts its answer."""

    __slots__ = ("_address_bytes", "_key_id", "_token", "address")

    def __init__(self, token: HsmToken, key_id: bytes, address: str) -> None:
        self._token = token
        self._key_id = key_id
        self.address = address
        self._address_bytes = bytes.fromhex(address[2:])

    def __repr__(self) -> str:
        return f"HsmSigner({self.address} in token {self._token.label!r})"

    @property
    def key_id(self) -> bytes:
        return self._key_id

    def _sign_hash(self, msg_hash: bytes) -> tuple[int, int, int]:
        r, s = signature_rs(self._token.sign_digest(self._key_id, msg_hash))
        try:
            return ethereum_signature(msg_hash, r, s, self._address_bytes)
        except ValueError as exc:
            raise SigningUnavailableError(f"token {self._token.label!r} returned a bad signature for "
                                          f"{self.address}: {exc}") from None


def open_token(module_path: Path, token_label: str | None, pin: str | None, pin_file: Path | None) -> HsmToken:
    """The token the settings name (LEDGER_HSM_MODULE, _TOKEN_LABEL, _PIN or _PIN_FILE)."""
    if not token_label:
        raise ConfigurationError("LEDGER_HSM_MODULE is set: set LEDGER_HSM_TOKEN_LABEL too")
    if "SOFTHSM2_CONF" in os.environ:
        log.info("PKCS#11 module %s with SOFTHSM2_CONF=%s", module_path, os.environ["SOFTHSM2_CONF"])
    return HsmToken(module_path, token_label, read_pin(pin, pin_file))


__all__ = ["HsmSigner", "HsmToken", "SECP256K1_EC_PARAMS", "open_token", "point_of", "read_pin", "signature_rs"]
