"""Dev-key constants, the dev-key guard, and loading accounts from keys and keystores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from eth_keys.main import lazy_key_api
from eth_typing import HexStr

from chain.connect import connect
from chain.errors import ConfigurationError, DevKeyRefusedError
from chain.keys import (
    ANVIL_DEV_KEYS,
    DEV_MNEMONIC,
    ETH_TESTER_DEV_KEYS,
    LOCAL_CHAIN_IDS,
    account_from_key,
    account_from_keystore,
    is_dev_key,
    is_local_chain,
    load_account,
    refuse_dev_key_on_public_chain,
)

OWN_KEY = "0x" + "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


def test_anvil_dev_keys_are_the_mnemonic_accounts() -> None:
    Account.enable_unaudited_hdwallet_features()
    derived = [
        Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key.to_0x_hex()
        for i in range(10)
    ]
    assert list(ANVIL_DEV_KEYS) == derived
    assert Account.from_key(ANVIL_DEV_KEYS[0]).address == (
        "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    )


def test_embedded_chain_id_and_accounts_are_known_local() -> None:
    w3 = connect("embedded")
    assert is_local_chain(w3.eth.chain_id)
    funded = {Account.from_key(k).address for k in ETH_TESTER_DEV_KEYS}
    assert set(w3.eth.accounts) == funded


@pytest.mark.parametrize("chain_id", [31337, 1337, 131277322940537])
def test_local_chain_ids(chain_id: int) -> None:
    assert chain_id in LOCAL_CHAIN_IDS
    assert is_local_chain(chain_id)


@pytest.mark.parametrize("chain_id", [1, 10, 137, 8453, 11155111])
def test_public_chain_ids_are_not_local(chain_id: int) -> None:
    assert not is_local_chain(chain_id)


def test_is_dev_key_accepts_any_spelling() -> None:
    key = ANVIL_DEV_KEYS[3]
    assert is_dev_key(key)
    assert is_dev_key(key[2:])
    assert is_dev_key(key.upper().replace("0X", "0x"))
    assert is_dev_key(f"  {key}\n")
    assert is_dev_key(bytes.fromhex(key[2:]))
    assert is_dev_key(ETH_TESTER_DEV_KEYS[0])
    assert not is_dev_key(OWN_KEY)


def test_dev_key_refused_on_mainnet_without_leaking_it() -> None:
    key = ANVIL_DEV_KEYS[0]
    with pytest.raises(DevKeyRefusedError, match="for chain id 1 with") as caught:
        refuse_dev_key_on_public_chain(key, 1)
    message = str(caught.value)
    assert key[2:] not in message.lower()
    assert "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266" in message
    assert "published" in message
    assert isinstance(caught.value, ConfigurationError)


def test_eth_tester_key_refused_on_public_chain() -> None:
    with pytest.raises(DevKeyRefusedError, match="chain id 11155111"):
        refuse_dev_key_on_public_chain(ETH_TESTER_DEV_KEYS[0], 11155111)


@pytest.mark.parametrize("chain_id", sorted(LOCAL_CHAIN_IDS))
def test_dev_key_accepted_on_local_chains(chain_id: int) -> None:
    refuse_dev_key_on_public_chain(ANVIL_DEV_KEYS[0], chain_id)


def test_own_key_accepted_anywhere() -> None:
    refuse_dev_key_on_public_chain(OWN_KEY, 1)


def test_account_from_key_forms() -> None:
    expected = Account.from_key(OWN_KEY).address
    assert account_from_key(OWN_KEY).address == expected
    assert account_from_key(OWN_KEY[2:]).address == expected
    assert account_from_key(bytes.fromhex(OWN_KEY[2:])).address == expected


@pytest.mark.parametrize(
    "bad",
    [
        OWN_KEY[:-1],  # one digit short
        OWN_KEY + "00",
        "0x" + "zz" * 32,
        "0x" + "00" * 32,  # zero is not a valid secp256k1 key
        "0x" + "ff" * 32,  # above the curve order
    ],
)
def test_bad_keys_rejected_without_echo(bad: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        account_from_key(bad)
    text = str(caught.value).lower()
    assert bad[2:12].lower() not in text
    assert caught.value.__cause__ is None


def _keystore(tmp_path: Path, password: str) -> Path:
    document = Account.encrypt(HexStr(OWN_KEY), password, kdf="pbkdf2", iterations=2)
    path = tmp_path / "key.json"
    path.write_text(json.dumps(document))
    return path


def test_keystore_round_trip(tmp_path: Path) -> None:
    path = _keystore(tmp_path, "correct horse")
    account = account_from_keystore(path, "correct horse")
    assert account.address == Account.from_key(OWN_KEY).address


def test_keystore_wrong_password(tmp_path: Path) -> None:
    path = _keystore(tmp_path, "correct horse")
    with pytest.raises(ConfigurationError, match="wrong password") as caught:
        account_from_keystore(path, "battery staple")
    assert "correct horse" not in str(caught.value)


def test_keystore_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="keystore not found"):
        account_from_keystore(tmp_path / "nope.json", "x")


def test_load_account_from_key_env_and_keystore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = Account.from_key(OWN_KEY).address
    assert load_account(OWN_KEY).address == address

    monkeypatch.setenv("LP_TEST_KEY", OWN_KEY)
    assert load_account("LP_TEST_KEY").address == address

    path = _keystore(tmp_path, "pw")
    assert load_account(str(path), password="pw").address == address
    monkeypatch.setenv("LP_TEST_KEYSTORE", str(path))
    monkeypatch.setenv("LIVEPROOF_KEYSTORE_PASSWORD", "pw")
    assert load_account("LP_TEST_KEYSTORE").address == address


def test_load_account_keystore_needs_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LIVEPROOF_KEYSTORE_PASSWORD", raising=False)
    with pytest.raises(ConfigurationError, match="needs a password"):
        load_account(str(_keystore(tmp_path, "pw")))


def test_load_account_never_echoes_near_miss_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_account(OWN_KEY[:-3])
    assert OWN_KEY[2:20] not in str(caught.value)
    assert "<redacted>" in str(caught.value)

    monkeypatch.setenv("LP_TEST_GARBAGE", "not-a-key")
    with pytest.raises(ConfigurationError, match=r"\$LP_TEST_GARBAGE holds neither"):
        load_account("LP_TEST_GARBAGE")

    with pytest.raises(ConfigurationError, match="LP_TEST_UNSET"):
        load_account("LP_TEST_UNSET")


def test_signing_uses_the_coincurve_backend() -> None:
    # The pure-Python fallback signs about ten times slower; coincurve is a pinned dependency.
    # eth-account signs through eth_keys' lazy_key_api, which picks its backend on import.
    assert type(lazy_key_api.backend).__name__ == "CoinCurveECCBackend"
