"""chain.events on a real anvil: every LiveProof event produced through the clients and decoded,
chunked scans, resumable cursors, splitting ranges a node refuses, retries, and the decoder on
synthetic logs for the events no client can produce."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
import requests
from eth_abi.abi import encode
from eth_hash.auto import keccak
from web3 import HTTPProvider, Web3
from web3.datastructures import AttributeDict
from web3.exceptions import Web3RPCError
from web3.providers.base import BaseProvider
from web3.types import RPCEndpoint, RPCResponse

from chain import eip712
from chain.actions import (
    AttestationInput,
    ClaimInput,
    EndorsementTerms,
    ProductInput,
    claims_digest,
    currency_code,
    label_hash,
)
from chain.artifacts import DEPLOYED_CONTRACTS, abi_of
from chain.clients.base import Sent
from chain.deploy import Deployment
from chain.devnet import DevnetInfo
from chain.errors import ConfigurationError
from chain.events import (
    ChainEvent,
    EventDecodeError,
    EventDecoder,
    EventReader,
    EventScanError,
    ScanCursor,
    is_range_too_large,
)
from chain.relayer import Relayer, RetryPolicy

DAY = 86_400
ZERO_ROLE = bytes(32)
BRAND_ROLE = keccak(b"BRAND_ROLE")
CERTIFIER_ROLE = keccak(b"CERTIFIER_ROLE")
OPERATOR_ROLE = keccak(b"OPERATOR_ROLE")
GTIN = 4006381333931
NO_WAIT = RetryPolicy(attempts=4, base_delay=0.0, max_delay=0.0, jitter=0.0)

#: Every event in the three ABIs that no client call can emit (no setter in the contracts).
UNREACHABLE = {"RoleAdminChanged", "EIP712DomainChanged"}

Expected = tuple[str, str, dict[str, Any], str]


@dataclass
class Scenario:
    """One of every reachable LiveProof event, sent through the clients, and what to expect."""

    first_block: int
    last_block: int = 0
    expected: list[Expected] = field(default_factory=list)
    terms: dict[str, EndorsementTerms] = field(default_factory=dict)

    def expect(self, sent: Sent[Any], *events: tuple[str, str, dict[str, Any]]) -> None:
        """Record that ``sent``'s transaction emitted ``events``, in this order."""
        self.expected.extend((c, n, args, sent.tx_hash) for c, n, args in events)


def _timestamp(w3: Web3, sent: Sent[Any]) -> int:
    return int(w3.eth.get_block(sent.block_number)["timestamp"])


@pytest.fixture
def scenario(
    w3: Web3, accounts: Any, deployment: Deployment, relayers: dict[str, Relayer]
) -> Scenario:
    """Produce every reachable event through the typed clients (rewound after the test)."""
    a = accounts
    admin_p = deployment.provenance(w3, relayers["admin"])
    brand_p = deployment.provenance(w3, relayers["brand"])
    certifier_p = deployment.provenance(w3, relayers["certifier"])
    admin_a = deployment.anchors(w3, relayers["admin"])
    anchor_a = deployment.anchors(w3, relayers["anchor"])
    anchor2_a = deployment.anchors(w3, relayers["anchor2"])
    operator_a = deployment.anchors(w3, relayers["relayer"])
    recorder_l = deployment.ledger(w3, relayers["relayer"])
    admin_l = deployment.ledger(w3, relayers["admin"])
    s = Scenario(first_block=int(w3.eth.block_number) + 1)
    pr, ar, sl = "ProvenanceRegistry", "AnchorRegistry", "SaleLedger"

    sent: Sent[Any] = admin_p.register_brand(a.brand.address, "Acme Tea Co.")
    s.expect(
        sent,
        (
            pr,
            "RoleGranted",
            {"role": BRAND_ROLE, "account": a.brand.address, "sender": a.admin.address},
        ),
        (pr, "BrandRegistered", {"brand": a.brand.address, "name": "Acme Tea Co."}),
    )
    sent = admin_p.register_certifier(a.certifier.address, "Organic Inspect Ltd.")
    s.expect(
        sent,
        (
            pr,
            "RoleGranted",
            {"role": CERTIFIER_ROLE, "account": a.certifier.address, "sender": a.admin.address},
        ),
        (
            pr,
            "CertifierRegistered",
            {"certifier": a.certifier.address, "name": "Organic Inspect Ltd."},
        ),
    )
    product = ProductInput(
        GTIN, "Longjing green tea 250 g", "ipfs://bafy-product", label_hash("meta")
    )
    sent_product = brand_p.register_product(product)
    product_id = sent_product.value
    s.expect(
        sent_product,
        (
            pr,
            "ProductRegistered",
            {
                "productId": product_id,
                "brand": a.brand.address,
                "gtin": GTIN,
                "name": product.name,
                "uri": product.uri,
                "metadataHash": product.metadata_hash,
            },
        ),
    )
    now = int(w3.eth.get_block("latest")["timestamp"])
    claim = ClaimInput(
        product_id, label_hash("origin"), label_hash("pdf"), "ipfs://origin", now + 30 * DAY
    )
    sent_claim = brand_p.add_claim(claim)
    claim_id = sent_claim.value
    assert claim_id == claim.claim_id()
    s.expect(
        sent_claim,
        (
            pr,
            "ClaimAdded",
            {
                "claimId": claim_id,
                "productId": product_id,
                "issuer": a.brand.address,
                "claimType": claim.claim_type,
                "contentHash": claim.content_hash,
                "uri": claim.uri,
                "validUntil": claim.valid_until,
            },
        ),
    )
    attestation = AttestationInput(claim_id, label_hash("report"), "ipfs://report")
    sent_att = certifier_p.attest(attestation)
    attestation_id = sent_att.value
    s.expect(
        sent_att,
        (
            pr,
            "ClaimAttested",
            {
                "attestationId": attestation_id,
                "claimId": claim_id,
                "certifier": a.certifier.address,
                "reportHash": attestation.report_hash,
                "uri": attestation.uri,
            },
        ),
    )
    sent = certifier_p.revoke_attestation(attestation_id)
    s.expect(
        sent,
        (
            pr,
            "AttestationRevoked",
            {
                "attestationId": attestation_id,
                "certifier": a.certifier.address,
                "revokedAt": _timestamp(w3, sent),
            },
        ),
    )

    # Anchors, endorsements (direct and relayed), sessions.
    for account, handle in ((a.anchor, "@xiaoli"), (a.anchor2, "@dawang")):
        sent = admin_a.register_anchor(account.address, handle)
        s.expect(
            sent,
            (
                ar,
                "AnchorRegistered",
                {"anchor": account.address, "handleHash": label_hash(handle), "handle": handle},
            ),
        )
    now = int(w3.eth.get_block("latest")["timestamp"])
    direct = EndorsementTerms(
        product_id=product_id,
        claims_digest=claims_digest([claim_id]),
        room_id=label_hash("room-8848"),
        sponsored=True,
        commission_bps=1_500,
        unit_price=12_900,
        currency=currency_code("CNY"),
        valid_from=now,
        valid_until=now + 7 * DAY,
    )
    by_sig = EndorsementTerms(
        product_id=product_id,
        claims_digest=claims_digest([claim_id]),
        room_id=label_hash("room-0001"),
        sponsored=False,
        commission_bps=0,
        unit_price=2**200 + 7,
        currency=currency_code("USD"),
        valid_from=now - DAY,
        valid_until=now + 2 * DAY,
    )
    s.terms = {"direct": direct, "by_sig": by_sig}
    nonce = anchor_a.nonce(a.anchor.address)
    sent_direct = anchor_a.endorse(direct)
    s.expect(
        sent_direct,
        (
            ar,
            "EndorsementRecorded",
            {
                "endorsementId": sent_direct.value,
                "anchor": a.anchor.address,
                "productId": product_id,
                "terms": _terms_dict(direct),
                "nonce": nonce,
            },
        ),
    )
    nonce = anchor_a.nonce(a.anchor.address)
    deadline = now + 3_600
    data = eip712.endorsement(anchor_a.domain(), a.anchor.address, by_sig, nonce, deadline)
    signature = eip712.sign(a.anchor, data)
    sent = operator_a.endorse_by_sig(a.anchor.address, by_sig, nonce, deadline, signature)
    s.expect(
        sent,
        (
            ar,
            "EndorsementRecorded",
            {
                "endorsementId": sent.value,
                "anchor": a.anchor.address,
                "productId": product_id,
                "terms": _terms_dict(by_sig),
                "nonce": nonce,
            },
        ),
    )
    sent = anchor_a.revoke_endorsement(sent_direct.value)
    s.expect(
        sent,
        (
            ar,
            "EndorsementRevoked",
            {
                "endorsementId": sent_direct.value,
                "anchor": a.anchor.address,
                "revokedAt": _timestamp(w3, sent),
            },
        ),
    )
    session, room, recording = label_hash("session-1"), label_hash("room-8848"), label_hash("rec")
    sent = operator_a.open_session(session, room, a.anchor.address)
    s.expect(
        sent,
        (
            ar,
            "SessionOpened",
            {
                "sessionId": session,
                "roomId": room,
                "anchor": a.anchor.address,
                "openedAt": _timestamp(w3, sent),
            },
        ),
    )
    sent = operator_a.close_session(session, recording, 4_321)
    s.expect(
        sent,
        (
            ar,
            "SessionClosed",
            {
                "sessionId": session,
                "recordingHash": recording,
                "displayedSales": 4_321,
                "closedAt": _timestamp(w3, sent),
            },
        ),
    )
    sent = admin_a.remove_anchor(a.anchor2.address)
    s.expect(
        sent,
        (ar, "AnchorRemoved", {"anchor": a.anchor2.address, "handleHash": label_hash("@dawang")}),
    )
    sent = brand_p.revoke_claim(claim_id)
    s.expect(
        sent,
        (
            pr,
            "ClaimRevoked",
            {"claimId": claim_id, "issuer": a.brand.address, "revokedAt": _timestamp(w3, sent)},
        ),
    )

    # Nonce cancellation on both registries.
    nonce = brand_p.nonce(a.brand.address)
    sent = brand_p.increase_nonce()
    assert sent.value == nonce
    s.expect(sent, (pr, "NonceCancelled", {"account": a.brand.address, "nonce": nonce}))
    nonce = anchor2_a.nonce(a.anchor2.address)
    sent = anchor2_a.increase_nonce()
    s.expect(sent, (ar, "NonceCancelled", {"account": a.anchor2.address, "nonce": nonce}))

    # The ledger: a batch, a single receipt, a recorder change; a role revoked.
    root, leaf = label_hash("batch root 1"), label_hash("receipt leaf 1")
    sent = recorder_l.commit_batch(root, 1_000)
    s.expect(sent, (sl, "BatchCommitted", {"root": root, "count": 1_000}))
    sent = recorder_l.record_receipt(leaf)
    s.expect(sent, (sl, "ReceiptRecorded", {"leaf": leaf}))
    sent = admin_l.set_recorder(a.stranger.address)
    s.expect(
        sent,
        (
            sl,
            "RecorderChanged",
            {"previousRecorder": a.relayer.address, "newRecorder": a.stranger.address},
        ),
    )
    sent = admin_p.revoke_role("CERTIFIER_ROLE", a.certifier.address)
    s.expect(
        sent,
        (
            pr,
            "RoleRevoked",
            {"role": CERTIFIER_ROLE, "account": a.certifier.address, "sender": a.admin.address},
        ),
    )
    s.last_block = int(w3.eth.block_number)
    return s


def _terms_dict(terms: EndorsementTerms) -> dict[str, Any]:
    return terms.message()


def _summary(events: list[ChainEvent]) -> list[Expected]:
    return [(e.contract, e.name, e.args, e.tx_hash) for e in events]


def _reader(w3: Web3, deployment: Deployment, **options: Any) -> EventReader:
    return EventReader(w3, deployment, retry=NO_WAIT, **options)


# --------------------------------------------------------------------------- decoding


def test_every_event_decodes_with_its_args(
    w3: Web3, deployment: Deployment, scenario: Scenario
) -> None:
    reader = _reader(w3, deployment)
    events = reader.events(scenario.first_block, scenario.last_block)
    assert _summary(events) == scenario.expected
    # One of every event of the three ABIs, except those no contract function emits.
    every = {s.name for name in DEPLOYED_CONTRACTS for s in reader.decoder.specs[name]}
    assert every - {e.name for e in events} == UNREACHABLE
    for event in events:
        assert event.address == deployment.address(event.contract)
        assert re.fullmatch("0x[0-9a-f]{64}", event.tx_hash)
        assert re.fullmatch("0x[0-9a-f]{64}", event.block_hash)
        assert scenario.first_block <= event.block_number <= scenario.last_block
    assert reader.stats.unknown == 0


def test_endorsement_terms_decode_to_the_terms_sent(
    w3: Web3, deployment: Deployment, scenario: Scenario
) -> None:
    events = _reader(w3, deployment).events(
        scenario.first_block, scenario.last_block, names=["EndorsementRecorded"]
    )
    assert [e.args["terms"] for e in events] == [
        _terms_dict(scenario.terms["direct"]),
        _terms_dict(scenario.terms["by_sig"]),
    ]
    for event, key in zip(events, ("direct", "by_sig"), strict=True):
        terms = event.args["terms"]
        sent = scenario.terms[key]
        assert EndorsementTerms(**{_snake(k): v for k, v in terms.items()}) == sent
        assert isinstance(terms["currency"], bytes)
        assert len(terms["currency"]) == 3
        assert isinstance(terms["sponsored"], bool)
        assert list(terms) == [
            "productId",
            "claimsDigest",
            "roomId",
            "sponsored",
            "commissionBps",
            "unitPrice",
            "currency",
            "validFrom",
            "validUntil",
        ]


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _plain(value: Any, item: dict[str, Any]) -> Any:
    """web3's decoded value in chain.events' conventions (bytes, dicts for tuples)."""
    if item["type"] == "tuple":
        parts = item["components"]
        values = [value[c["name"]] for c in parts] if hasattr(value, "keys") else list(value)
        return {c["name"]: _plain(v, c) for c, v in zip(parts, values, strict=True)}
    if isinstance(value, bytes):
        return bytes(value)
    return value


def test_decoder_agrees_with_web3_process_log(
    w3: Web3, deployment: Deployment, scenario: Scenario
) -> None:
    """web3's own (slow) event decoding is the reference for every log of the scenario."""
    reader = _reader(w3, deployment)
    events = reader.events(scenario.first_block, scenario.last_block)
    by_address = {deployment.address(n): n for n in DEPLOYED_CONTRACTS}
    checked = 0
    for tx_hash in dict.fromkeys(e.tx_hash for e in events):
        receipt = w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        ours = reader.decoder.decode_receipt(receipt)
        assert ours == [e for e in events if e.tx_hash == tx_hash]
        for log, event in zip(receipt["logs"], ours, strict=True):
            name = by_address[log["address"]]
            contract = w3.eth.contract(address=log["address"], abi=abi_of(name))
            reference = contract.events[event.name]().process_log(log)
            abi = next(i for i in abi_of(name) if i.get("name") == event.name)
            expected = {
                item["name"]: _plain(reference["args"][item["name"]], item)
                for item in abi["inputs"]
            }
            assert event.args == expected
            assert event.log_index == reference["logIndex"]
            assert event.block_number == reference["blockNumber"]
            checked += 1
    assert checked == len(events)


def test_deployment_events_are_read_from_the_start_block(
    w3: Web3, deployment: Deployment, accounts: Any
) -> None:
    reader = EventReader(w3, deployment)
    assert reader.cursor == ScanCursor(deployment.start_block)
    events = reader.events()  # from the cursor to the latest block
    admin, operator = accounts.admin.address, accounts.relayer.address
    assert [(e.contract, e.name, e.args) for e in events] == [
        (
            "ProvenanceRegistry",
            "RoleGranted",
            {"role": ZERO_ROLE, "account": admin, "sender": admin},
        ),
        ("AnchorRegistry", "RoleGranted", {"role": ZERO_ROLE, "account": admin, "sender": admin}),
        (
            "AnchorRegistry",
            "RoleGranted",
            {"role": OPERATOR_ROLE, "account": operator, "sender": admin},
        ),
        ("SaleLedger", "RoleGranted", {"role": ZERO_ROLE, "account": admin, "sender": admin}),
        (
            "SaleLedger",
            "RecorderChanged",
            {"previousRecorder": "0x" + "00" * 20, "newRecorder": operator},
        ),
        # The session fixture then makes the relayer a registry admin, as the API needs.
        (
            "ProvenanceRegistry",
            "RoleGranted",
            {"role": ZERO_ROLE, "account": operator, "sender": admin},
        ),
        (
            "AnchorRegistry",
            "RoleGranted",
            {"role": ZERO_ROLE, "account": operator, "sender": admin},
        ),
    ]
    blocks = {name: c.block_number for name, c in deployment.contracts.items()}
    deployed = [
        e
        for e in events
        if not (
            e.name == "RoleGranted"
            and e.args["account"] == operator
            and e.args["role"] == ZERO_ROLE
        )
    ]
    assert [e.block_number for e in deployed] == [blocks[e.contract] for e in deployed]
    assert reader.cursor == ScanCursor(int(w3.eth.block_number) + 1)


def _synthetic_log(
    address: str, topics: list[bytes], data: bytes, block: int = 7
) -> dict[str, Any]:
    return {
        "address": address.lower(),
        "topics": ["0x" + t.hex() for t in topics],
        "data": "0x" + data.hex(),
        "blockNumber": hex(block),
        "blockHash": "0x" + "ab" * 32,
        "transactionHash": "0x" + "cd" * 32,
        "transactionIndex": "0x0",
        "logIndex": "0x3",
        "removed": False,
    }


def _topic0(signature: str) -> bytes:
    return keccak(signature.encode())


def test_unreachable_events_decode_from_synthetic_logs(deployment: Deployment) -> None:
    """RoleAdminChanged and EIP712DomainChanged have no emitter in LiveProof; decode them anyway."""
    decoder = EventDecoder({n: deployment.address(n) for n in DEPLOYED_CONTRACTS})
    address = deployment.address("AnchorRegistry")
    log = _synthetic_log(
        address,
        [
            _topic0("RoleAdminChanged(bytes32,bytes32,bytes32)"),
            OPERATOR_ROLE,
            ZERO_ROLE,
            BRAND_ROLE,
        ],
        b"",
    )
    event = decoder.decode(log)
    assert event == ChainEvent(
        "AnchorRegistry",
        "RoleAdminChanged",
        {"role": OPERATOR_ROLE, "previousAdminRole": ZERO_ROLE, "newAdminRole": BRAND_ROLE},
        7,
        "0x" + "ab" * 32,
        "0x" + "cd" * 32,
        3,
        address,
    )
    log = _synthetic_log(address, [_topic0("EIP712DomainChanged()")], b"")
    event = decoder.decode(log)
    assert event is not None
    assert (event.name, event.args) == ("EIP712DomainChanged", {})


def test_decoder_handles_checksummed_and_upper_case_hex(deployment: Deployment) -> None:
    decoder = EventDecoder({"SaleLedger": deployment.address("SaleLedger")})
    root = bytes(range(32))
    log = _synthetic_log(
        deployment.address("SaleLedger"),
        [_topic0("BatchCommitted(bytes32,uint32)"), root],
        (2**32 - 1).to_bytes(32, "big"),
    )
    log["address"] = deployment.address("SaleLedger")
    log["topics"] = [t.upper().replace("0X", "0x") for t in log["topics"]]
    event = decoder.decode(log)
    assert event is not None
    assert event.args == {"root": root, "count": 2**32 - 1}


def test_decoder_ignores_unknown_topics_and_refuses_malformed_logs(deployment: Deployment) -> None:
    decoder = EventDecoder({n: deployment.address(n) for n in DEPLOYED_CONTRACTS})
    ledger = deployment.address("SaleLedger")
    assert (
        decoder.decode(_synthetic_log(ledger, [_topic0("Transfer(address,address,uint256)")], b""))
        is None
    )
    assert decoder.decode(_synthetic_log(ledger, [], b"")) is None
    # A known topic from an address that is not a LiveProof contract is not ours either.
    stranger = "0x" + "11" * 20
    assert (
        decoder.decode(
            _synthetic_log(stranger, [_topic0("ReceiptRecorded(bytes32)"), bytes(32)], b"")
        )
        is None
    )

    batch = _topic0("BatchCommitted(bytes32,uint32)")
    with pytest.raises(EventDecodeError):
        decoder.decode(_synthetic_log(ledger, [batch, bytes(32)], b""))  # no data word
    with pytest.raises(EventDecodeError):
        decoder.decode(_synthetic_log(ledger, [batch], bytes(32)))  # root missing
    closed = _topic0("SessionClosed(bytes32,bytes32,uint64,uint64)")
    anchors = deployment.address("AnchorRegistry")
    with pytest.raises(EventDecodeError):
        decoder.decode(_synthetic_log(anchors, [closed, bytes(32)], bytes(64)))  # 2 of 3 words
    brand = _topic0("BrandRegistered(address,string)")
    provenance = deployment.address("ProvenanceRegistry")
    with pytest.raises(EventDecodeError):
        decoder.decode(_synthetic_log(provenance, [brand, bytes(32)], b"\x01" * 40))
    # A well-formed string decodes.
    good = encode(["string"], ["Acme"])
    event = decoder.decode(_synthetic_log(provenance, [brand, bytes(12) + b"\x22" * 20], good))
    assert event is not None
    assert event.args == {"brand": Web3.to_checksum_address("0x" + "22" * 20), "name": "Acme"}


# --------------------------------------------------------------------------- chunks & cursors


@pytest.mark.parametrize("chunk_size", [1, 3])
def test_chunked_scans_yield_the_same_events_in_order(
    w3: Web3, deployment: Deployment, scenario: Scenario, chunk_size: int
) -> None:
    end = scenario.last_block
    whole = _reader(w3, deployment, chunk_size=100_000).events(deployment.start_block, end)
    reader = _reader(w3, deployment, chunk_size=chunk_size)
    chunked = reader.events(deployment.start_block, end)
    assert chunked == whole
    assert [e.position for e in chunked] == sorted(e.position for e in chunked)
    assert len({e.position for e in chunked}) == len(chunked)
    blocks = end - deployment.start_block + 1
    assert reader.stats.requests == -(-blocks // chunk_size)


def test_cursor_resumes_after_a_break_without_repeats_or_gaps(
    w3: Web3, deployment: Deployment, scenario: Scenario, tmp_path: Path
) -> None:
    end = scenario.last_block
    full = _reader(w3, deployment, chunk_size=4).events(to_block=end)
    assert len(full) > 20
    stops = sorted({0, 1, 2, 3, 5, 8, 13, len(full) // 2, len(full) - 1, len(full)})
    for stop, (first_size, second_size) in zip(
        stops, itertools.cycle([(4, 4), (3, 7), (1, 1000), (1000, 2)]), strict=False
    ):
        reader = _reader(w3, deployment, chunk_size=first_size)
        taken = list(itertools.islice(reader.iter_events(to_block=end), stop))
        path = tmp_path / f"cursor-{stop}.json"
        reader.cursor.save(path)
        resumed = _reader(w3, deployment, chunk_size=second_size, cursor=ScanCursor.load(path))
        rest = resumed.events(to_block=end)
        assert taken + rest == full, f"stop after {stop}"
        assert resumed.cursor == ScanCursor(end + 1)


def test_cursor_counts_an_event_consumed_once_yielded(
    w3: Web3, deployment: Deployment, scenario: Scenario
) -> None:
    """A consumer failing mid-chunk resumes after the last event it was handed."""
    end = scenario.last_block
    full = _reader(w3, deployment).events(to_block=end)
    reader = _reader(w3, deployment, chunk_size=50)
    seen: list[ChainEvent] = []

    def consume() -> None:
        for event in reader.iter_events(to_block=end):
            seen.append(event)
            if event.name == "ClaimAttested":
                raise RuntimeError("consumer crashed")

    with pytest.raises(RuntimeError, match="consumer crashed"):
        consume()
    assert reader.cursor == ScanCursor(seen[-1].block_number, seen[-1].log_index + 1)
    # The same reader picks up where its cursor stands.
    assert seen + reader.events(to_block=end) == full


def test_cursor_skips_the_logs_of_its_block_already_yielded(
    w3: Web3, deployment: Deployment, scenario: Scenario
) -> None:
    """Blocks with several logs: a cursor inside a block yields only that block's later logs."""
    end = scenario.last_block
    full = _reader(w3, deployment).events(to_block=end)
    multi = next(e for e in full if e.log_index == 1)  # the second log of its block
    reader = _reader(w3, deployment, cursor=ScanCursor(multi.block_number, 1))
    assert reader.events(to_block=end) == full[full.index(multi) :]


def test_progress_reports_every_chunk_and_the_saved_cursor_is_final(
    w3: Web3, deployment: Deployment, scenario: Scenario, tmp_path: Path
) -> None:
    end = scenario.last_block
    reader = _reader(w3, deployment, chunk_size=5)
    path = tmp_path / "cursor.json"
    calls: list[tuple[int, int]] = []

    def progress(done: int, to: int) -> None:
        calls.append((done, to))
        reader.cursor.save(path)
        assert reader.cursor == ScanCursor(done + 1)

    list(reader.iter_events(to_block=end, progress=progress))
    start = deployment.start_block
    assert calls == [(min(b + 4, end), end) for b in range(start, end + 1, 5)]
    assert ScanCursor.load(path) == ScanCursor(end + 1)
    # Nothing left: resuming at the end yields nothing and sends no eth_getLogs.
    again = _reader(w3, deployment, cursor=ScanCursor.load(path))
    assert again.events(to_block=end) == []
    assert again.stats.requests == 0


def test_scan_defaults_to_the_latest_block_and_explicit_from_block_moves_the_cursor(
    w3: Web3, deployment: Deployment, scenario: Scenario
) -> None:
    reader = _reader(w3, deployment, start_block=scenario.first_block)
    events = reader.events()
    assert _summary(events) == scenario.expected
    assert reader.cursor == ScanCursor(int(w3.eth.block_number) + 1)
    assert reader.events() == []  # caught up
    last = events[-1]
    assert reader.events(last.block_number, last.block_number) == [last]
    assert reader.cursor == ScanCursor(last.block_number + 1)
    assert reader.events(10, 9) == []


def test_names_filter_by_topic_and_by_qualified_name(
    w3: Web3, deployment: Deployment, scenario: Scenario
) -> None:
    reader = _reader(w3, deployment, start_block=scenario.first_block)
    both = reader.events(to_block=scenario.last_block, names=["NonceCancelled", "BatchCommitted"])
    assert [(e.contract, e.name) for e in both] == [
        ("ProvenanceRegistry", "NonceCancelled"),
        ("AnchorRegistry", "NonceCancelled"),
        ("SaleLedger", "BatchCommitted"),
    ]
    one = reader.events(
        scenario.first_block, scenario.last_block, names={"AnchorRegistry.NonceCancelled"}
    )
    assert one == [both[1]]
    with pytest.raises(ConfigurationError, match="unknown event 'Transfer'"):
        reader.events(names=["Transfer"])


def test_mapping_of_addresses_and_unknown_topics_counted(
    w3: Web3, deployment: Deployment, scenario: Scenario
) -> None:
    """Read through a name -> address mapping; logs whose topic the ABI lacks are counted."""
    # Decode the ProvenanceRegistry's address with the SaleLedger ABI: only the shared
    # AccessControl events are known, the rest is counted as unknown.
    reader = EventReader(
        w3,
        {"SaleLedger": deployment.address("ProvenanceRegistry")},
        start_block=scenario.first_block,
    )
    events = reader.events(to_block=scenario.last_block)
    assert {e.name for e in events} == {"RoleGranted", "RoleRevoked"}
    assert {e.contract for e in events} == {"SaleLedger"}
    provenance_logs = [x for x in scenario.expected if x[0] == "ProvenanceRegistry"]
    assert reader.stats.unknown == len(provenance_logs) - len(events)
    assert reader.stats.unknown_topics["0x" + _topic0("BrandRegistered(address,string)").hex()] == 1


# --------------------------------------------------------------------------- RPC failures


class ScriptedProvider(HTTPProvider):
    """anvil's HTTP provider, except that eth_getLogs fails as ``fail`` decides."""

    def __init__(self, url: str, fail: Callable[[int, int, int], object | None]) -> None:
        super().__init__(url)
        self.fail = fail
        self.calls: list[tuple[int, int]] = []
        self.answered: list[tuple[int, int]] = []

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        if method == "eth_getLogs":
            lo, hi = int(params[0]["fromBlock"], 16), int(params[0]["toBlock"], 16)
            self.calls.append((lo, hi))
            outcome = self.fail(lo, hi, len(self.calls))
            if isinstance(outcome, BaseException):
                raise outcome
            if isinstance(outcome, dict):
                return cast(
                    RPCResponse, {"jsonrpc": "2.0", "id": len(self.calls), "error": outcome}
                )
            self.answered.append((lo, hi))
        return super().make_request(method, params)


def _http_error(status: int, body: str = "") -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    response._content = body.encode()
    return requests.HTTPError(f"{status} Client Error", response=response)


TOO_LARGE = [
    pytest.param(
        {"code": -32005, "message": "query returned more than 10000 results"}, id="infura"
    ),
    pytest.param(
        {"code": -32602, "message": "range 1000000 exceeds limit of 10000"}, id="infura-range"
    ),
    pytest.param(
        {
            "code": -32600,
            "message": "You can make eth_getLogs requests with up to a 500 block range. Based on "
            "your parameters, this block range should work: [0x123c9b2, 0x123cba5]",
        },
        id="alchemy-range",
    ),
    pytest.param(
        {"code": -32602, "message": "Log response size exceeded. Please reduce query block range."},
        id="alchemy-size",
    ),
    pytest.param({"code": -32602, "message": "query exceeds max block range 4"}, id="reth-range"),
    pytest.param(
        {"code": -32602, "message": "query exceeds max results 20000, retry with the range 1-2"},
        id="reth-results",
    ),
    pytest.param({"code": -32000, "message": "exceed maximum block range: 5000"}, id="bsc"),
    pytest.param({"code": -32000, "message": "block range is too wide (maximum 4)"}, id="frontier"),
    pytest.param(
        {
            "code": -32602,
            "message": "invalid params",
            "data": {"payload": "range 9009594 is bigger than range limit 2000"},
        },
        id="tenderly-data",
    ),
    pytest.param({"code": -32000, "message": "request timed out"}, id="geth-timeout"),
    pytest.param(_http_error(413, "Payload Too Large"), id="http-413"),
]


@pytest.mark.parametrize("error", TOO_LARGE)
def test_ranges_the_node_refuses_are_split_until_they_pass(
    anvil: DevnetInfo, w3: Web3, deployment: Deployment, scenario: Scenario, error: object
) -> None:
    limit = 4
    end = scenario.last_block
    expected = _reader(w3, deployment).events(to_block=end)
    provider = ScriptedProvider(
        anvil.rpc_url, lambda lo, hi, _: error if hi - lo + 1 > limit else None
    )
    reader = _reader(Web3(provider), deployment, chunk_size=10_000)
    assert reader.events(to_block=end) == expected
    assert reader.stats.splits > 0
    assert all(hi - lo + 1 <= limit for lo, hi in provider.answered)
    # The answered ranges tile the scan exactly: no block twice, none missed.
    tiles = sorted(provider.answered)
    assert tiles[0][0] == deployment.start_block
    assert tiles[-1][1] == end
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(tiles))


def test_a_single_block_the_node_refuses_is_an_error(
    anvil: DevnetInfo, deployment: Deployment, scenario: Scenario
) -> None:
    too_many = {"code": -32005, "message": "query returned more than 10000 results"}
    provider = ScriptedProvider(anvil.rpc_url, lambda *_: too_many)
    reader = _reader(Web3(provider), deployment, chunk_size=8)
    with pytest.raises(EventScanError, match="single block is too large"):
        reader.events(to_block=scenario.last_block)
    assert provider.calls[-1][0] == provider.calls[-1][1]


@pytest.mark.parametrize(
    "transient",
    [
        pytest.param(requests.ConnectionError("connection reset by peer"), id="reset"),
        pytest.param(requests.ReadTimeout("read timed out"), id="timeout"),
        pytest.param(_http_error(503), id="http-503"),
        pytest.param(_http_error(429), id="http-429"),
        pytest.param(
            {"code": -32005, "message": "daily request count exceeded, request rate limited"},
            id="rate",
        ),
        pytest.param({"code": -32000, "message": "request timed out"}, id="server-timeout"),
    ],
)
def test_transient_failures_are_retried(
    anvil: DevnetInfo,
    w3: Web3,
    deployment: Deployment,
    scenario: Scenario,
    transient: object,
) -> None:
    end = scenario.last_block
    expected = _reader(w3, deployment).events(to_block=end)
    # The first chunk's first two attempts fail; the third answers.
    provider = ScriptedProvider(anvil.rpc_url, lambda _lo, _hi, n: transient if n <= 2 else None)
    reader = _reader(Web3(provider), deployment, chunk_size=1)
    assert reader.events(to_block=end) == expected
    assert reader.stats.retries == 2
    assert reader.stats.splits == 0


def test_retries_give_up_and_fatal_errors_are_not_retried(
    anvil: DevnetInfo, deployment: Deployment, scenario: Scenario
) -> None:
    end = scenario.last_block
    down = ScriptedProvider(anvil.rpc_url, lambda *_: requests.ConnectionError("refused"))
    reader = _reader(Web3(down), deployment)
    with pytest.raises(EventScanError, match="gave up after 4 attempts"):
        reader.events(to_block=end)
    assert reader.stats.retries == 3
    assert len(down.calls) == 4
    assert reader.cursor == ScanCursor(deployment.start_block)  # nothing consumed

    missing = {"code": -32601, "message": "the method eth_getLogs does not exist/is not available"}
    fatal = ScriptedProvider(anvil.rpc_url, lambda *_: missing)
    reader = _reader(Web3(fatal), deployment)
    with pytest.raises(EventScanError, match="does not exist"):
        reader.events(to_block=end)
    assert reader.stats.retries == 0
    assert len(fatal.calls) == 1


@pytest.mark.parametrize(
    ("message", "too_large"),
    [
        ("query returned more than 10000 results", True),
        ("Query returned more than 10000 results. Try with this block range [0x1, 0x2].", True),
        ("eth_getLogs is limited to a 10,000 range", True),
        (
            "block range is larger than max block range, block range = 5120, max block range = 500",
            True,
        ),
        ("Block range limit exceeded", True),
        ("block range too high", True),
        ("block range is bigger than maxBlockRange", True),
        ("nonce too low", False),
        ("execution reverted", False),
        ("block range extends beyond current head block", False),
        ("invalid block range params", False),
        ("daily request count exceeded, request rate limited", False),
        ("header not found", False),
    ],
)
def test_range_too_large_classification(message: str, too_large: bool) -> None:
    error = {"code": -32000, "message": message}
    response = cast(RPCResponse, {"jsonrpc": "2.0", "id": 1, "error": error})
    exc = Web3RPCError(repr(error), rpc_response=response)
    assert is_range_too_large(exc) is too_large


# --------------------------------------------------------------------------- other providers


class ForwardingProvider(BaseProvider):
    """A provider that is not JSON-based: the reader falls back to ``w3.eth.get_logs``."""

    def __init__(self, inner: HTTPProvider) -> None:
        super().__init__()
        self.inner = inner

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        return self.inner.make_request(method, params)

    def is_connected(self, show_traceback: bool = False) -> bool:
        return bool(self.inner.is_connected(show_traceback))


def test_non_json_providers_go_through_web3_get_logs(
    anvil: DevnetInfo, w3: Web3, deployment: Deployment, scenario: Scenario
) -> None:
    end = scenario.last_block
    expected = _reader(w3, deployment).events(to_block=end)
    other = Web3(ForwardingProvider(HTTPProvider(anvil.rpc_url)))
    reader = _reader(other, deployment, chunk_size=7)
    assert reader.events(to_block=end) == expected


def test_decoder_reads_web3_formatted_receipts(
    w3: Web3, deployment: Deployment, scenario: Scenario
) -> None:
    decoder = EventDecoder({n: deployment.address(n) for n in DEPLOYED_CONTRACTS})
    tx_hash = scenario.expected[-1][3]
    receipt = w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    assert isinstance(receipt, AttributeDict)
    [event] = decoder.decode_receipt(receipt)
    assert (event.contract, event.name, event.args, event.tx_hash) == scenario.expected[-1]
    assert event.block_hash == "0x" + bytes(receipt["blockHash"]).hex()


def test_scan_cursor_file_round_trip_and_refusals(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    ScanCursor(123, 4).save(path)
    assert ScanCursor.load(path) == ScanCursor(123, 4)
    assert not (tmp_path / "c.json.tmp").exists()
    path.write_text('{"next_block": "x"}')
    with pytest.raises(ConfigurationError):
        ScanCursor.load(path)
    path.write_text('{"next_block": -1}')
    with pytest.raises(ConfigurationError):
        ScanCursor.load(path)
    with pytest.raises(FileNotFoundError):
        ScanCursor.load(tmp_path / "missing.json")


def test_reader_refuses_bad_settings(w3: Web3, deployment: Deployment) -> None:
    with pytest.raises(ConfigurationError):
        EventReader(w3, deployment, chunk_size=0)
    with pytest.raises(ConfigurationError):
        EventReader(w3, {})
    with pytest.raises(ConfigurationError):
        EventReader(w3, deployment, start_block=-1)
