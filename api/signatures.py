"""Checks a participant's relayed EIP-712 action must pass before the relayer spends gas.

Each check mirrors one the registries make in ``SignedActions._useSignature`` (deadline,
signature, nonce), so a request refused here gets the problem the revert would have given,
and nothing is written or paid for. Contract wallets (EIP-1271) are left to the contract,
which asks the wallet; a refusal then surfaces, still before gas, from the estimate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

from eth_keys.exceptions import BadSignature
from web3 import Web3

from api.auth import Principal, forbidden
from api.chain_gateway import ChainLink
from api.chain_records import find_event
from api.models.registry import SignedAction
from api.problems import ProblemError
from api.state import AppState
from chain import eip712
from chain.contract_errors import InvalidAccountNonce, InvalidSignature, SignatureExpired
from chain.events import ChainEvent, EventDecoder

T = TypeVar("T")

Registry = Literal["ProvenanceRegistry", "AnchorRegistry"]


def same_address(a: str | None, b: str) -> bool:
    """True when ``a`` and ``b`` are the same address (any letter case)."""
    return a is not None and a.lower() == b.lower()


def require_subject(principal: Principal, address: str, what: str) -> None:
    """403 unless the API key acts for ``address`` (a brand or certifier key's subject)."""
    if not same_address(principal.subject, address):
        raise forbidden(f"this key acts for {principal.subject}, not for the {what} {address}")


def domain(link: ChainLink, registry: Registry) -> eip712.Domain:
    """The EIP-712 domain of ``registry`` on the connected chain."""
    client = link.provenance if registry == "ProvenanceRegistry" else link.anchors
    return eip712.Domain.of(registry, link.chain_id, client.address)


def chain_now(link: ChainLink) -> int:
    """The time the next block will at least carry: the later of wall clock and chain head."""
    head = int(link.w3.eth.get_block("latest")["timestamp"])
    return max(head, int(time.time()))


def invalid_signature(signer: str, why: str) -> ProblemError:
    """The 422 for a signature that is not ``signer``'s over the typed data."""
    return ProblemError(
        422,
        "invalid-signature",
        "The signature is not the signer's",
        f"not a valid signature of {signer}: {why}",
    )


def signature_expired(deadline: int) -> ProblemError:
    """The 422 for a signature whose deadline has passed."""
    return ProblemError(
        422,
        "signature-expired",
        "The signature's deadline has passed",
        f"deadline {deadline} is in the past; sign again with a later deadline",
        deadline=deadline,
    )


def invalid_nonce(signer: str, expected: int, given: int | None = None) -> ProblemError:
    """The 422 for a nonce that is not the signer's next one (replayed, or from the future)."""
    if given is None:
        why = "the nonce was used meanwhile"
    elif given < expected:
        why = f"nonce {given} is already used (a replay, or a stale signature)"
    else:
        why = f"nonce {given} is not reached yet"
    return ProblemError(
        422,
        "invalid-nonce",
        "The signature's nonce is not the signer's next nonce",
        f"{why}; {signer} must sign with nonce {expected}",
        expected_nonce=expected,
    )


def is_contract(link: ChainLink, address: str) -> bool:
    """True when ``address`` has code: its signatures are checked by EIP-1271, on chain."""
    return len(link.w3.eth.get_code(Web3.to_checksum_address(address))) > 0


def check_signature(link: ChainLink, typed: dict[str, Any], signer: str, signature: str) -> None:
    """422 unless ``signature`` (hex) recovers to ``signer``; high-s forms are refused as the
    contracts refuse them. A contract wallet's signature is left to the contract to check."""
    if is_contract(link, signer):
        return
    try:
        recovered = eip712.recover(typed, bytes.fromhex(signature.removeprefix("0x")))
    except (ValueError, BadSignature) as exc:
        # BadSignature (not a ValueError): no public key recovers from it, e.g. r = s = 0.
        raise invalid_signature(signer, str(exc)) from None
    if not same_address(recovered, signer):
        raise invalid_signature(signer, "it was made by another key, or over other data")


def check_signed(
    link: ChainLink,
    registry: Registry,
    typed: dict[str, Any],
    *,
    signer: str,
    nonce: int,
    deadline: int,
    signature: str,
) -> None:
    """Deadline, signature and nonce, in the contract's order, before anything is sent."""
    if deadline < chain_now(link):
        raise signature_expired(deadline)
    check_signature(link, typed, signer, signature)
    client = link.provenance if registry == "ProvenanceRegistry" else link.anchors
    expected = client.nonce(signer)
    if nonce != expected:
        raise invalid_nonce(signer, expected, nonce)


def relay(state: AppState, action: Callable[[ChainLink], T]) -> T:
    """Send a relayed action; the signature reverts the pre-checks could not see coming (a
    contract wallet's answer, a nonce used meanwhile) become the pre-checks' problems."""
    try:
        return state.gateway.send(action)
    except InvalidSignature as exc:
        signer = str(exc.error_args.get("signer", "the signer"))
        raise invalid_signature(
            signer, "the registry refused it (a contract wallet's answer)"
        ) from None
    except SignatureExpired as exc:
        raise signature_expired(int(exc.error_args["deadline"])) from None
    except InvalidAccountNonce as exc:
        account = str(exc.error_args["account"])
        raise invalid_nonce(account, int(exc.error_args["currentNonce"])) from None


def _comparable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str) and value.startswith("0x"):
        return value.lower()
    return value


def recorded_event(
    link: ChainLink,
    contract: str,
    name: str,
    key: str,
    value: str,
    expected: Mapping[str, Any],
) -> ChainEvent | None:
    """The latest ``name`` event whose ``key`` is ``value``, when every ``expected`` argument
    matches it: a write an earlier attempt made whose answer was lost, safe to adopt."""
    found = find_event(link, contract, name, key, value)
    if found is None:
        return None
    receipt = link.w3.eth.get_transaction_receipt(found[0])  # type: ignore[arg-type]
    decoder = EventDecoder({contract: link.deployment.address(contract)})
    for event in decoder.decode_receipt(receipt):
        if event.name != name or _comparable(event.args.get(key)) != _comparable(value):
            continue
        if all(_comparable(event.args.get(k)) == _comparable(v) for k, v in expected.items()):
            return event
        return None
    return None  # pragma: no cover - find_event found it in this very transaction


def relay_signed(
    state: AppState,
    link: ChainLink,
    registry: Registry,
    typed: dict[str, Any],
    *,
    signer: str,
    body: SignedAction,
    send: Callable[[ChainLink, bytes], T],
) -> T:
    """Check a signed action (deadline, signature, nonce) and relay it; ``send`` receives the
    link and the signature's bytes."""
    check_signed(
        link,
        registry,
        typed,
        signer=signer,
        nonce=body.nonce,
        deadline=body.deadline,
        signature=body.signature,
    )
    signature = bytes.fromhex(body.signature[2:])
    return relay(state, lambda lk: send(lk, signature))
