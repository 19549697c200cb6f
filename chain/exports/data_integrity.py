"""Data Integrity proofs with the ``ecdsa-jcs-2019`` cryptosuite (W3C "Data Integrity ECDSA
Cryptosuites v1.0") and the P-256 key that makes them, named as a ``did:key``.

Securing a document: the proof options (``DataIntegrityProof``, ``ecdsa-jcs-2019``,
``created``, ``verificationMethod``, ``proofPurpose``) take the document's ``@context``;
``hashData = SHA-256(JCS(proof options)) || SHA-256(JCS(document))``, signed with ECDSA P-256
over SHA-256 (deterministic, RFC 6979), the signature as ``r || s`` (64 bytes, IEEE P1363),
``proofValue`` its multibase base58btc form (``z...``). The public key is a Multikey: the
varint of multicodec ``p256-pub`` (0x1200) then the 33-byte compressed point, base58btc,
``z``-prefixed; ``did:key:<multikey>`` names it and ``did:key:<multikey>#<multikey>`` is the
verification method. JCS (RFC 8785) comes from ``rfc8785``, ECDSA from ``cryptography``,
base58 from ``base58``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import base58
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from chain.errors import ConfigurationError

PROOF_TYPE: Final = "DataIntegrityProof"
CRYPTOSUITE: Final = "ecdsa-jcs-2019"
PROOF_PURPOSE: Final = "assertionMethod"
#: The varint of multicodec ``p256-pub`` (0x1200): the first two bytes of a P-256 Multikey.
P256_PUB_PREFIX: Final = b"\x80\x24"
#: The issuer key's file name in the state directory when ``--issuer-key`` is not given.
DEFAULT_KEY_NAME: Final = "credential-issuer-key.pem"
_SCALAR: Final = 32


def multikey(public_key: ec.EllipticCurvePublicKey) -> str:
    """The P-256 public key as a Multikey ``publicKeyMultibase`` (``zDn...``)."""
    point = public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    return "z" + base58.b58encode(P256_PUB_PREFIX + point).decode("ascii")


def did_key(public_key: ec.EllipticCurvePublicKey) -> str:
    """The ``did:key`` DID of a P-256 public key."""
    return f"did:key:{multikey(public_key)}"


def public_key_of(verification_method: str) -> ec.EllipticCurvePublicKey:
    """The P-256 public key a ``did:key:<multikey>#<multikey>`` verification method names;
    raises ValueError for anything else."""
    did, sep, fragment = verification_method.partition("#")
    multibase = did.removeprefix("did:key:")
    if not sep or multibase == did or fragment != multibase or not multibase.startswith("z"):
        raise ValueError(f"not a did:key verification method: {verification_method!r}")
    raw = base58.b58decode(multibase[1:])
    if raw[:2] != P256_PUB_PREFIX or len(raw) != 2 + 1 + _SCALAR:
        raise ValueError(f"not a P-256 Multikey: {multibase!r}")
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw[2:])


@dataclass(frozen=True)
class IssuerKey:
    """The P-256 key that secures exported credentials, and where it is kept."""

    private_key: ec.EllipticCurvePrivateKey
    path: Path
    #: True when this run created the key file.
    created: bool = False

    @property
    def did(self) -> str:
        """The issuer's ``did:key``."""
        return did_key(self.private_key.public_key())

    @property
    def verification_method(self) -> str:
        """``did:key:<multikey>#<multikey>``: the key as a proof's ``verificationMethod``."""
        return f"{self.did}#{multikey(self.private_key.public_key())}"


def _read_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise ConfigurationError(f"cannot read the issuer key {path}: {exc.strerror}") from None
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ConfigurationError(f"{path} is not a P-256 (secp256r1) private key")
    return key


def issuer_key(path: Path | None = None) -> IssuerKey:
    """The issuer key in ``path`` (a PEM P-256 private key), or without one the key kept in the
    state directory, created there (mode 0600) on first use. Raises ConfigurationError when
    the key cannot be read or is not P-256."""
    if path is not None:
        return IssuerKey(_read_key(path), path)
    from chain import paths

    default = paths.state_dir() / DEFAULT_KEY_NAME
    if default.exists():
        return IssuerKey(_read_key(default), default)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(default, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another run created it first: use that one
        return IssuerKey(_read_key(default), default)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot create the issuer key {default}: {exc.strerror}"
        ) from None
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return IssuerKey(key, default, created=True)


def hash_data(document: dict[str, Any], proof_config: dict[str, Any]) -> bytes:
    """``SHA-256(JCS(proof_config)) || SHA-256(JCS(document))``: what the proof signs."""
    return (
        hashlib.sha256(rfc8785.dumps(proof_config)).digest()
        + hashlib.sha256(rfc8785.dumps(document)).digest()
    )


def add_proof(document: dict[str, Any], key: IssuerKey, *, created: str) -> dict[str, Any]:
    """``document`` secured with an ``ecdsa-jcs-2019`` Data Integrity proof made by ``key`` at
    ``created`` (an ``xsd:dateTimeStamp``); ``document`` itself is not changed."""
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    proof: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": created,
        "verificationMethod": key.verification_method,
        "proofPurpose": PROOF_PURPOSE,
    }
    if "@context" in unsecured:
        proof["@context"] = unsecured["@context"]
    der = key.private_key.sign(
        hash_data(unsecured, proof), ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
    )
    r, s = decode_dss_signature(der)
    signature = r.to_bytes(_SCALAR, "big") + s.to_bytes(_SCALAR, "big")
    proof["proofValue"] = "z" + base58.b58encode(signature).decode("ascii")
    return {**unsecured, "proof": proof}


def verify_proof(secured: dict[str, Any]) -> bool:
    """True when ``secured`` carries an ``ecdsa-jcs-2019`` proof by the ``did:key`` it names
    that verifies (the cryptosuite's Verify Proof algorithm)."""
    proof = secured.get("proof")
    if not isinstance(proof, dict):
        return False
    config = {k: v for k, v in proof.items() if k != "proofValue"}
    unsecured = {k: v for k, v in secured.items() if k != "proof"}
    value = proof.get("proofValue")
    if (
        config.get("type") != PROOF_TYPE
        or config.get("cryptosuite") != CRYPTOSUITE
        or not isinstance(value, str)
        or not value.startswith("z")
    ):
        return False
    if "@context" in config:
        context, own = config["@context"], unsecured.get("@context")
        wanted = context if isinstance(context, list) else [context]
        has = own if isinstance(own, list) else [own]
        if has[: len(wanted)] != wanted:  # the document's contexts must start with the proof's
            return False
        unsecured["@context"] = context
    try:
        public_key = public_key_of(str(config.get("verificationMethod")))
        signature = base58.b58decode(value[1:])
        if len(signature) != 2 * _SCALAR:
            return False
        der = encode_dss_signature(
            int.from_bytes(signature[:_SCALAR], "big"), int.from_bytes(signature[_SCALAR:], "big")
        )
        public_key.verify(der, hash_data(unsecured, config), ec.ECDSA(hashes.SHA256()))
    except (ValueError, InvalidSignature):
        return False
    return True
