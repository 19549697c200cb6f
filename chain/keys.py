"""Signing keys: loading them, and refusing published dev keys on real chains.

Key material never appears in an exception message or repr raised from here:
errors name the source (a path, an environment variable) or the public
address, and chained exceptions that might echo the key are suppressed.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from chain.errors import ConfigurationError, DevKeyRefusedError

DEV_MNEMONIC = "test test test test test test test test test test test junk"

# Accounts 0-9 of DEV_MNEMONIC at m/44'/60'/0'/0/i, as anvil and hardhat fund them.
ANVIL_DEV_KEYS: tuple[str, ...] = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
)

# eth-tester (the "embedded" chain) funds the keys 1..10 as 32-byte integers.
ETH_TESTER_DEV_KEYS: tuple[str, ...] = tuple(f"0x{i:064x}" for i in range(1, 11))

ANVIL_CHAIN_ID = 31337
GETH_DEV_CHAIN_ID = 1337
# What EthereumTesterProvider reports with eth-tester 0.14 (py-evm backend).
ETH_TESTER_CHAIN_ID = 131277322940537
LOCAL_CHAIN_IDS: frozenset[int] = frozenset(
    {ANVIL_CHAIN_ID, GETH_DEV_CHAIN_ID, ETH_TESTER_CHAIN_ID}
)

KEYSTORE_PASSWORD_ENV = "LIVEPROOF_KEYSTORE_PASSWORD"  # noqa: S105 - a variable name

_HEX_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEXISH = re.compile(r"^(0x)?[0-9a-fA-F]{16,}$")
_DEV_KEYS = frozenset(k[2:] for k in (*ANVIL_DEV_KEYS, *ETH_TESTER_DEV_KEYS))


def _normalise(key: str | bytes) -> str:
    if isinstance(key, bytes):
        return key.hex()
    text = key.strip().lower()
    return text[2:] if text.startswith("0x") else text


def is_local_chain(chain_id: int) -> bool:
    """Say whether ``chain_id`` belongs to a throwaway development chain."""
    return chain_id in LOCAL_CHAIN_IDS


def is_dev_key(key: str | bytes) -> bool:
    """Say whether ``key`` is one of the published anvil/hardhat/eth-tester keys."""
    return _normalise(key) in _DEV_KEYS


def refuse_dev_key_on_public_chain(key: str | bytes, chain_id: int) -> None:
    """Raise :class:`DevKeyRefusedError` if a published dev key would sign for a real chain."""
    if not is_dev_key(key) or is_local_chain(chain_id):
        return
    address = Account.from_key(bytes.fromhex(_normalise(key))).address
    raise DevKeyRefusedError(
        f"refusing to sign for chain id {chain_id} with the well-known development key of "
        f"{address}: its private key is published (anvil/hardhat/eth-tester defaults), so "
        f"anyone can take what it holds or impersonate it there. Dev keys are only accepted "
        f"on local chain ids {sorted(LOCAL_CHAIN_IDS)}; use a keystore of your own."
    )


def account_from_key(private_key: str | bytes) -> LocalAccount:
    """Build an account from a 32-byte private key given as hex (``0x`` optional) or bytes."""
    text = _normalise(private_key)
    if not _HEX_KEY.match(text):
        raise ConfigurationError("not a private key: expected 32 bytes as 64 hex digits")
    try:
        account: LocalAccount = Account.from_key(bytes.fromhex(text))
    except ValueError:
        # eth-keys' message can quote the value, so the cause is dropped on purpose.
        raise ConfigurationError("not a valid secp256k1 private key") from None
    return account


def account_from_keystore(path: Path | str, password: str) -> LocalAccount:
    """Decrypt an Ethereum JSON keystore (V3) file into an account."""
    keystore = Path(path)
    try:
        document = json.loads(keystore.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"keystore not found: {keystore}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"cannot read keystore {keystore}: {exc}") from None
    try:
        key = Account.decrypt(document, password)
    except (ValueError, KeyError, TypeError):
        raise ConfigurationError(
            f"cannot decrypt keystore {keystore}: wrong password or not a V3 keystore"
        ) from None
    return account_from_key(bytes(key))


def load_account(key_or_env: str, *, password: str | None = None) -> LocalAccount:
    """Load an account from a hex key, a keystore path, or an env variable holding either.

    A keystore's password comes from ``password`` or ``$LIVEPROOF_KEYSTORE_PASSWORD``.
    """
    source = key_or_env.strip()
    if _HEX_KEY.match(source):
        return account_from_key(source)
    if _ENV_NAME.match(source) and source in os.environ:
        value = os.environ[source].strip()
        if _HEX_KEY.match(value):
            return account_from_key(value)
        if Path(value).expanduser().is_file():
            return _from_keystore_path(Path(value).expanduser(), password)
        raise ConfigurationError(
            f"${source} holds neither a private key (64 hex digits) nor a keystore path"
        )
    candidate = Path(source).expanduser()
    if candidate.is_file():
        return _from_keystore_path(candidate, password)
    # A near-miss hex string or a phrase may be a mistyped secret: never echo those.
    shown = "<redacted>" if _HEXISH.match(source) or " " in source else source
    raise ConfigurationError(
        f"cannot load an account from {shown}: not a private key, a set environment "
        "variable, or an existing keystore file"
    )


def _from_keystore_path(path: Path, password: str | None) -> LocalAccount:
    secret = password if password is not None else os.environ.get(KEYSTORE_PASSWORD_ENV)
    if secret is None:
        raise ConfigurationError(
            f"keystore {path} needs a password: pass one or set ${KEYSTORE_PASSWORD_ENV}"
        )
    return account_from_keystore(path, secret)


def account_or_dev_key(source: str | None, chain_id: int, *, what: str = "account") -> LocalAccount:
    """``source`` loaded with :func:`load_account`, or on a local devnet its first funded dev
    account; elsewhere a missing source is an error (dev keys are never a default there)."""
    if source:
        return load_account(source)
    if chain_id == ANVIL_CHAIN_ID:
        return account_from_key(ANVIL_DEV_KEYS[0])
    if chain_id == ETH_TESTER_CHAIN_ID:
        return account_from_key(ETH_TESTER_DEV_KEYS[0])
    raise ConfigurationError(
        f"chain {chain_id} is not a local devnet: configure a funded {what} key"
    )
