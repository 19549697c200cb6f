"""Client behaviour that is not about one contract: reverts that only show once mined, and
signature recovery that refuses what the contracts refuse."""

from __future__ import annotations

import pytest
from web3 import Web3

from chain import eip712
from chain.clients import SaleLedgerClient
from chain.contract_errors import BatchAlreadyCommitted, ReceiptAlreadyRecorded
from chain.eip712 import SECP256K1_HALF_N, Domain
from chain.keys import ANVIL_DEV_KEYS, account_from_key

N = 2 * SECP256K1_HALF_N + 1


def test_mined_revert_is_raised_by_name(ledger: SaleLedgerClient) -> None:
    """With an explicit gas limit nothing is estimated, so the revert happens on chain."""
    root = Web3.keccak(text="mined twice")
    ledger.commit_batch(root, 3, gas=100_000)
    with pytest.raises(BatchAlreadyCommitted) as caught:
        ledger.commit_batch(root, 3, gas=100_000)
    assert caught.value.error_args == {"root": root}
    ledger.record_receipt(Web3.keccak(text="leaf"), gas=100_000)
    with pytest.raises(ReceiptAlreadyRecorded):
        ledger.record_receipt(Web3.keccak(text="leaf"), gas=100_000)


def test_recover_refuses_high_s_and_bad_lengths() -> None:
    signer = account_from_key(ANVIL_DEV_KEYS[1])
    domain = Domain.of("AnchorRegistry", 31337, "0x" + "11" * 20)
    typed = eip712.cancel_nonce(domain, signer.address, 0, 2**40)
    signature = eip712.sign(signer, typed)
    assert eip712.recover(typed, signature) == signer.address
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    malleated = r + (N - s).to_bytes(32, "big") + bytes([v ^ 1])
    with pytest.raises(ValueError, match="high s"):
        eip712.recover(typed, malleated)
    with pytest.raises(ValueError, match="65 bytes"):
        eip712.recover(typed, signature[:64])
