"""``liveproof export manifests|epcis|credentials`` on a devnet, each export checked against the
rules of its specification, written out here (no schema files, nothing fetched):

* EPCIS 2.0 (JSON-LD binding) and CBV 2.0: the document's required fields and ``@context``,
  each ObjectEvent's required fields, only standard fields besides user extensions whose
  prefix the document declares, CBV business steps and dispositions (bare words or their URIs)
  with the action and disposition CBV gives the step, GS1 Digital Link class identifiers with a
  valid check digit, ``xsd:dateTimeStamp`` times and unique UUID-URN event ids.
* VC Data Model 2.0: the base context first, ``VerifiableCredential`` among the types, an
  issuer URL, ``dateTimeStamp`` validity, a subject, typed evidence, every term defined by the
  VC context or the inline one (which must not redefine the protected VC terms), and secured
  by a proof (§2.1: a conforming document MUST be).
* Data Integrity ECDSA Cryptosuites v1.0, ``ecdsa-jcs-2019``: each proof is verified by the
  cryptosuite's Verify Proof algorithm written out here, apart from the exporter's code: the
  ``did:key`` decoded by hand (base58btc, the multicodec ``p256-pub`` varint, a compressed
  P-256 point), JCS for the JSON these documents hold, SHA-256 of the proof configuration then
  of the document, and ECDSA P-256 with ``cryptography``. The exporter's Multikey encoding is
  also checked against the key pair published with the W3C test vectors.

Every command's checks print as OK/FAIL lines and go into ``--report FILE``. Manifests are
exported from the real API served over HTTP, then audited from the directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pydantic import SecretStr
from sqlmodel import Session
from typer.testing import CliRunner, Result
from web3 import Web3

from api.app import create_app
from api.auth import create_key
from api.chain_gateway import ChainGateway
from api.committer import Committer
from api.config import Settings
from api.db import make_engine, writer
from api.migrate import upgrade
from api.models import Role
from api.seed import seed_catalogue
from chain import paths
from chain.actions import gtin_is_valid, label_hash
from chain.audit.registry import Endorsement, Product
from chain.deploy import Deployment
from chain.devnet import DevnetInfo, free_port
from chain.events import EventDecoder, ScanCursor
from chain.exports.credentials import secured_credentials
from chain.exports.data_integrity import IssuerKey, multikey, verify_proof
from chain.exports.endorsement_state import EndorsementState
from chain.keys import ANVIL_DEV_KEYS
from chain.receipts import ReceiptKind
from scripts.cli import app
from scripts.export_commands import download_manifests
from tests.audit.test_report_sales import commit_sales
from tests.audit.world import AuditWorld
from tests.conftest import Accounts

runner = CliRunner()

# -- the rules of the specifications ---------------------------------------------------------

#: XML Schema 1.1 ``dateTimeStamp`` (a date-time with a time zone), as VC 2.0 and the EPCIS
#: context (``eventTime``) require.
DATE_TIME_STAMP = re.compile(
    r"-?([1-9][0-9]{3,}|0[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T(([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?|(24:00:00(\.0+)?))"
    r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
)
UUID_URN = re.compile(
    r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
)
EVENT_HASH_ID = re.compile(r"ni:///sha-256;[0-9a-f]{64}\?ver=CBV2\.0")
TIME_ZONE_OFFSET = re.compile(r"[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00)")
ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
#: Prefixes the EPCIS context defines: not for user extensions.
EPCIS_PREFIXES = {"epcis", "cbv", "cbvmda", "gs1", "rdfs", "owl", "xsd", "dcterms"}
#: The fields of an ObjectEvent in EPCIS 2.0 (the common event fields and its own).
OBJECT_EVENT_FIELDS = {
    "type", "eventTime", "recordTime", "eventTimeZoneOffset", "eventID", "errorDeclaration",
    "certificationInfo", "epcList", "quantityList", "action", "bizStep", "disposition",
    "persistentDisposition", "readPoint", "bizLocation", "bizTransactionList", "sourceList",
    "destinationList", "sensorElementList", "ilmd",
}  # fmt: skip
QUANTITY_ELEMENT_FIELDS = {"epcClass", "quantity", "uom"}
#: CBV 2.0: the event type, action and disposition each business step used here goes with.
CBV_STEPS = {
    "commissioning": ("ObjectEvent", "ADD", "active"),
    "retail_selling": ("ObjectEvent", "OBSERVE", "retail_sold"),
}
GS1_DIGITAL_LINK_CLASS = re.compile(r"https://id\.gs1\.org/01/(\d{14})")

VC_V2_CONTEXT = "https://www.w3.org/ns/credentials/v2"
#: Terms the VC 2.0 context defines (protected: an inline context must not redefine them).
VC_TERMS = {
    "id", "type", "name", "description", "issuer", "credentialSubject", "validFrom",
    "validUntil", "evidence", "proof", "credentialStatus", "credentialSchema",
    "refreshService", "termsOfUse", "confidenceMethod", "relatedResource", "renderMethod",
    "VerifiableCredential", "VerifiablePresentation", "holder", "verifiableCredential",
    "DataIntegrityProof",
}  # fmt: skip
#: The properties of a ``DataIntegrityProof`` (VC Data Integrity 1.0, defined by the VC 2.0
#: context in the proof type's scoped context).
DATA_INTEGRITY_PROOF_FIELDS = {
    "@context", "id", "type", "cryptosuite", "created", "expires", "verificationMethod",
    "proofPurpose", "proofValue", "domain", "challenge", "nonce", "previousProof",
}  # fmt: skip
BASE58_BTC = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
#: The varint of multicodec p256-pub (0x1200) and p256-priv (0x1306).
P256_PUB, P256_PRIV = bytes([0x80, 0x24]), bytes([0x86, 0x26])


def cbv_word(value: str, vocabulary: str) -> str:
    """A CBV value as its bare word: EPCIS 2.0 JSON allows the word, the GS1 Web URI or the
    CBV 1.x URN."""
    web = {
        "bizStep": "https://ref.gs1.org/cbv/BizStep-",
        "disposition": "https://ref.gs1.org/cbv/Disp-",
    }
    urn = {"bizStep": "urn:epcglobal:cbv:bizstep:", "disposition": "urn:epcglobal:cbv:disp:"}
    for prefix in (web[vocabulary], urn[vocabulary]):
        if value.startswith(prefix):
            return value.removeprefix(prefix)
    assert re.fullmatch(r"[a-z_]+", value), f"{vocabulary} {value!r} is no CBV value"
    return value


def assert_extension(key: str, value: Any, prefixes: dict[str, str]) -> None:
    """A user extension: ``prefix:name`` keys all the way down, with a declared, non-GS1
    prefix."""
    prefix, sep, local = key.partition(":")
    assert sep, f"extension field {key!r} is not namespaced"
    assert local, f"extension field {key!r} is not namespaced"
    assert prefix in prefixes, f"extension prefix {prefix!r} is not declared in @context"
    assert prefix not in EPCIS_PREFIXES
    assert not prefixes[prefix].startswith("https://ref.gs1.org/")
    if isinstance(value, dict):
        for inner, inner_value in value.items():
            assert_extension(inner, inner_value, prefixes)


def assert_epcis_document(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """EPCIS 2.0 rules for an EPCISDocument of ObjectEvents; its events."""
    for required in ("@context", "type", "schemaVersion", "creationDate", "epcisBody"):
        assert required in doc, required
    context = doc["@context"]
    assert isinstance(context, list)
    assert context[0] == EPCIS_CONTEXT
    prefixes: dict[str, str] = {}
    for extra in context[1:]:
        assert isinstance(extra, dict)
        for prefix, iri in extra.items():
            assert ABSOLUTE_URI.fullmatch(iri), iri
            assert iri[-1] in ":/#", f"namespace {iri!r} must end in a gen-delim"
            prefixes[prefix] = iri
    assert doc["type"] == "EPCISDocument"
    assert doc["schemaVersion"] == "2.0"
    assert DATE_TIME_STAMP.fullmatch(doc["creationDate"])
    events = doc["epcisBody"]["eventList"]
    assert isinstance(events, list)
    ids = [event["eventID"] for event in events]
    assert len(set(ids)) == len(ids), "eventIDs must be unique"
    for event in events:
        assert event["type"] == "ObjectEvent"
        for required in ("eventTime", "eventTimeZoneOffset", "action"):
            assert required in event, required
        assert UUID_URN.fullmatch(event["eventID"]) or EVENT_HASH_ID.fullmatch(event["eventID"])
        assert DATE_TIME_STAMP.fullmatch(event["eventTime"]), event["eventTime"]
        assert TIME_ZONE_OFFSET.fullmatch(event["eventTimeZoneOffset"])
        assert event["action"] in ("ADD", "OBSERVE", "DELETE")
        assert event.get("epcList") or event.get("quantityList"), "an event needs a what"
        for key, value in event.items():
            if key not in OBJECT_EVENT_FIELDS:
                assert_extension(key, value, prefixes)
        for element in event.get("quantityList", []):
            assert set(element) <= QUANTITY_ELEMENT_FIELDS
            gtin = GS1_DIGITAL_LINK_CLASS.fullmatch(element["epcClass"])
            assert gtin is not None, element["epcClass"]
            assert gtin_is_valid(gtin.group(1))
            if "quantity" in element:
                assert element["quantity"] > 0
                if "uom" not in element:  # a count of instances
                    assert isinstance(element["quantity"], int)
        step = cbv_word(event["bizStep"], "bizStep")
        assert step in CBV_STEPS, step
        assert (event["type"], event["action"], cbv_word(event["disposition"], "disposition")) == (
            CBV_STEPS[step]
        )
    return list(events)


def assert_term_definition(term: str, definition: Any, prefixes: set[str]) -> None:
    """A JSON-LD term definition: an absolute or compact IRI, or an object with one."""
    iri = definition if isinstance(definition, str) else definition["@id"]
    prefix = iri.split(":", 1)[0]
    assert ABSOLUTE_URI.fullmatch(iri), f"{term}: {iri!r}"
    assert prefix in prefixes or "//" in iri or iri.startswith("urn:"), f"{term}: {iri!r}"
    if isinstance(definition, dict):
        assert set(definition) <= {"@id", "@type", "@container", "@context"}


def assert_vc2(credential: dict[str, Any]) -> None:
    """VC Data Model 2.0 rules, and every term defined."""
    context = credential["@context"]
    assert isinstance(context, list)
    assert context[0] == VC_V2_CONTEXT
    defined = set(VC_TERMS)
    for extra in context[1:]:
        if isinstance(extra, str):
            assert ABSOLUTE_URI.fullmatch(extra)
            continue
        prefixes = {
            k for k, v in extra.items() if isinstance(v, str) and v.endswith((":", "/", "#"))
        }
        for term, definition in extra.items():
            if term.startswith("@"):
                continue
            assert term not in VC_TERMS, f"the inline context redefines the protected {term!r}"
            assert_term_definition(term, definition, prefixes)
            defined.add(term)
    assert set(credential) <= defined | {"@context"}
    assert ABSOLUTE_URI.fullmatch(credential["id"])
    types = credential["type"]
    assert "VerifiableCredential" in types
    assert set(types) <= defined
    issuer = credential["issuer"]
    issuer_id = issuer if isinstance(issuer, str) else issuer["id"]
    assert ABSOLUTE_URI.fullmatch(issuer_id)
    if isinstance(issuer, dict):
        assert set(issuer) <= defined
    for name in ("validFrom", "validUntil"):
        if name in credential:
            assert DATE_TIME_STAMP.fullmatch(credential[name]), credential[name]
    if "validFrom" in credential and "validUntil" in credential:
        assert credential["validFrom"] <= credential["validUntil"]  # same format, both UTC
    subjects = credential["credentialSubject"]
    for subject in subjects if isinstance(subjects, list) else [subjects]:
        assert isinstance(subject, dict)
        assert subject
        assert_node(subject, defined)
    evidence = credential.get("evidence", [])
    for item in evidence if isinstance(evidence, list) else [evidence]:
        assert isinstance(item, dict)
        assert item.get("type"), "each evidence object must say its type"
        item_types = item["type"] if isinstance(item["type"], list) else [item["type"]]
        assert set(item_types) <= defined
        assert set(item) <= defined
    proof = credential["proof"]  # §2.1: secured by at least one securing mechanism
    for item in proof if isinstance(proof, list) else [proof]:
        assert item["type"] == "DataIntegrityProof"
        assert set(item) <= DATA_INTEGRITY_PROOF_FIELDS
        assert DATE_TIME_STAMP.fullmatch(item["created"])
        assert ABSOLUTE_URI.fullmatch(item["verificationMethod"])


def assert_node(node: dict[str, Any], defined: set[str]) -> None:
    """Every key of a node object, and of the nodes within it, is a defined term."""
    assert set(node) <= defined, set(node) - defined
    if "id" in node:
        assert ABSOLUTE_URI.fullmatch(node["id"])
    for value in node.values():
        if isinstance(value, dict):
            assert_node(value, defined)


# -- ecdsa-jcs-2019, verified apart from the exporter ----------------------------------------


def base58btc_decode(text: str) -> bytes:
    """Base58 with the Bitcoin alphabet (each leading "1" is a zero byte)."""
    number = 0
    for char in text:
        number = number * 58 + BASE58_BTC.index(char)
    zeros = len(text) - len(text.lstrip("1"))
    return bytes(zeros) + number.to_bytes((number.bit_length() + 7) // 8, "big")


def jcs(value: Any) -> bytes:
    """RFC 8785 for the JSON these documents hold (strings, integers within IEEE 754's exact
    range, booleans, lists, objects with ASCII keys): for those, sorted keys, no whitespace
    and ECMAScript string escaping are what ``json.dumps`` gives."""

    def check(item: Any) -> None:
        assert not isinstance(item, float), "no floats: their JCS form is not Python's"
        if isinstance(item, int) and not isinstance(item, bool):
            assert abs(item) <= 2**53
        if isinstance(item, dict):
            assert all(key.isascii() for key in item)  # UTF-16 order is code point order
            for inner in item.values():
                check(inner)
        if isinstance(item, list):
            for inner in item:
                check(inner)

    check(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def did_key_public_key(verification_method: str) -> ec.EllipticCurvePublicKey:
    """The P-256 key of a ``did:key:<multibase>#<multibase>`` verification method."""
    did, _, fragment = verification_method.partition("#")
    assert did == f"did:key:{fragment}"
    assert fragment.startswith("z")  # multibase base58btc
    raw = base58btc_decode(fragment[1:])
    assert raw[:2] == P256_PUB
    assert len(raw) == 2 + 33
    assert raw[2] in (2, 3)  # a compressed point
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw[2:])


def verify_ecdsa_jcs_2019(secured: dict[str, Any]) -> bool:
    """The cryptosuite's Verify Proof algorithm on one secured document."""
    unsecured = {k: v for k, v in secured.items() if k != "proof"}
    config = {k: v for k, v in secured["proof"].items() if k != "proofValue"}
    if config.get("type") != "DataIntegrityProof" or config.get("cryptosuite") != (
        "ecdsa-jcs-2019"
    ):
        return False
    if "@context" in config:
        context = config["@context"]
        if unsecured["@context"][: len(context)] != context:
            return False
        unsecured["@context"] = context
    proof_value = secured["proof"]["proofValue"]
    assert proof_value.startswith("z")
    signature = base58btc_decode(proof_value[1:])
    assert len(signature) == 64  # r || s
    hash_data = hashlib.sha256(jcs(config)).digest() + hashlib.sha256(jcs(unsecured)).digest()
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        did_key_public_key(config["verificationMethod"]).verify(
            der, hash_data, ec.ECDSA(hashes.SHA256())
        )
    except InvalidSignature:
        return False
    return True


# -- helpers ---------------------------------------------------------------------------------


def _deployment_file(world: AuditWorld) -> Path:
    path = world.manifests.parent / "deployment.json"
    if not path.exists():
        path.write_text(world.deployment.to_json(), encoding="utf-8")
    return path


def export(world: AuditWorld, *args: str) -> Result:
    """``liveproof export <args>`` against the session's anvil and the world's deployment."""
    rpc = world.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    command, *rest = args
    return runner.invoke(
        app, ["export", command, "--rpc", rpc, "--deployment", str(_deployment_file(world)), *rest]
    )


def _logs_of(w3: Web3, deployment: Deployment, tx_hash: str) -> list[Any]:
    receipt = w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    decoder = EventDecoder({n: c.address for n, c in deployment.contracts.items()})
    return decoder.decode_receipt(receipt)


# -- EPCIS -----------------------------------------------------------------------------------


def test_epcis_export_follows_epcis_2_and_cbv_2(world: AuditWorld, tmp_path: Path) -> None:
    committed = commit_sales(world)
    out = tmp_path / "epcis.jsonld"
    report_file = tmp_path / "report.json"
    result = export(
        world, "epcis", "--manifests", str(world.manifests), "--out", str(out),
        "--report", str(report_file),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        "OK: batch-verified: 3 checked",
        "OK: duplicate-receipt: 6 checked",
        "OK: product-registered: 6 checked",
    ]
    assert "wrote 2 commissioning and 6 retail_selling events" in lines[3]
    assert "1 refunds not exported" in lines[3]
    written = json.loads(report_file.read_text())
    assert written["format"] == "liveproof-audit-epcis/1"
    assert (written["ok"], written["findings"]) == (True, [])
    assert {name: (c["checked"], c["failed"]) for name, c in written["checks"].items()} == {
        "batch-verified": (3, 0),
        "duplicate-receipt": (6, 0),
        "product-registered": (6, 0),
    }
    stats = written["stats"]
    assert (stats["products"], stats["sales"], stats["refunds_left_out"]) == (2, 6, 1)
    events = assert_epcis_document(json.loads(out.read_text()))

    commissioning = [e for e in events if cbv_word(e["bizStep"], "bizStep") == "commissioning"]
    assert sorted(e["quantityList"][0]["epcClass"] for e in commissioning) == sorted(
        f"https://id.gs1.org/01/{gtin:014d}" for _name, gtin in committed.products.values()
    )
    assert all("quantity" not in e["quantityList"][0] for e in commissioning)

    sales = [e for e in events if cbv_word(e["bizStep"], "bizStep") == "retail_selling"]
    leaves = [leaf for leaf in committed.leaves if leaf.kind == ReceiptKind.SALE]
    gtins = {pid: gtin for pid, (_name, gtin) in committed.products.items()}
    expected_units: Counter[str] = Counter()
    for leaf in leaves:
        expected_units[f"https://id.gs1.org/01/{gtins[leaf.product_id]:014d}"] += leaf.quantity
    found_units: Counter[str] = Counter()
    for event in sales:
        found_units[event["quantityList"][0]["epcClass"]] += event["quantityList"][0]["quantity"]
    assert found_units == expected_units
    by_receipt = {e["liveproof:receipt"]["liveproof:receiptId"]: e for e in sales}
    assert by_receipt.keys() == {"0x" + leaf.receipt_id.hex() for leaf in leaves}
    for leaf in leaves:
        event = by_receipt["0x" + leaf.receipt_id.hex()]
        assert event["eventTime"] == time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(leaf.ordered_at)
        )
        assert event["liveproof:receipt"]["liveproof:leafHash"] == "0x" + leaf.leaf_hash().hex()
        # The link leads to the transaction that committed the receipt's batch.
        record = event["liveproof:chainRecord"]
        assert record["liveproof:chainId"] == f"eip155:{world.w3.eth.chain_id}"
        assert record["liveproof:contract"] == world.deployment.address("SaleLedger")
        logs = _logs_of(world.w3, world.deployment, record["liveproof:transactionHash"])
        roots = {"0x" + (log.args.get("root") or log.args["leaf"]).hex() for log in logs}
        assert event["liveproof:receipt"]["liveproof:batchRoot"] in roots
        assert logs[0].block_number == record["liveproof:blockNumber"]


def test_epcis_export_is_repeatable(world: AuditWorld, tmp_path: Path) -> None:
    commit_sales(world)
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert (
        export(world, "epcis", "--manifests", str(world.manifests), "--out", str(first)).exit_code
        == 0
    )
    assert (
        export(world, "epcis", "--manifests", str(world.manifests), "--out", str(second)).exit_code
        == 0
    )
    a, b = json.loads(first.read_text()), json.loads(second.read_text())
    assert a["epcisBody"] == b["epcisBody"]  # only creationDate may differ


def test_epcis_export_with_a_cursor_writes_only_new_events(
    world: AuditWorld, tmp_path: Path
) -> None:
    cursor = tmp_path / "epcis.cursor"
    session = world.open_session()
    world.commit([world.sale(session), world.sale(session)])

    def run(name: str) -> list[dict[str, Any]]:
        out = tmp_path / name
        result = export(
            world, "epcis", "--manifests", str(world.manifests), "--out", str(out),
            "--cursor", str(cursor),
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        return assert_epcis_document(json.loads(out.read_text()))

    first = run("1.jsonld")
    assert sorted(cbv_word(e["bizStep"], "bizStep") for e in first) == [
        "commissioning", "retail_selling", "retail_selling",
    ]  # fmt: skip
    later = world.sale(session, quantity=5)
    world.commit([later])
    (second,) = run("2.jsonld")  # only the new sale: the product and old sales were exported
    assert second["liveproof:receipt"]["liveproof:receiptId"] == "0x" + later.receipt_id.hex()
    assert run("3.jsonld") == []  # nothing new
    full = tmp_path / "full.jsonld"
    assert (
        export(world, "epcis", "--manifests", str(world.manifests), "--out", str(full)).exit_code
        == 0
    )
    everything = assert_epcis_document(json.loads(full.read_text()))
    assert {e["eventID"] for e in everything} == {e["eventID"] for e in [*first, second]}


def test_epcis_export_leaves_out_unverified_and_unregistered_sales(
    world: AuditWorld, tmp_path: Path
) -> None:
    session = world.open_session()
    stray = replace(world.sale(session), product_id=os.urandom(32))
    world.commit([world.sale(session), stray])
    tampered = world.commit(
        [world.sale(session), world.sale(session)],
        tamper=lambda rows: [{**rows[0], "quantity": 7}, *rows[1:]],
    )
    out = tmp_path / "epcis.json"
    report_file = tmp_path / "report.json"
    result = export(
        world, "epcis", "--manifests", str(world.manifests), "--out", str(out),
        "--report", str(report_file),
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    block = world.w3.eth.block_number
    assert result.stdout.splitlines()[:4] == [
        f"FAIL: batch-verified batch 0x{tampered.hex()} (block {block}): a manifest that "
        "rebuilds the committed root vs manifest does not rebuild root",
        "OK: duplicate-receipt: 2 checked",
        f"FAIL: product-registered sale 0x{stray.receipt_id.hex()}: a registered product (for "
        f"its GTIN) vs unregistered product 0x{stray.product_id.hex()}",
        "wrote 1 commissioning and 1 retail_selling events to "
        f"{out} (chain {world.w3.eth.chain_id} up to block {block}; 0 refunds not exported); "
        "the export is not complete",
    ]
    written = json.loads(report_file.read_text())
    assert written["ok"] is False
    assert [(f["check"], f["subject"]) for f in written["findings"]] == [
        ("batch-verified", f"batch 0x{tampered.hex()} (block {block})"),
        ("product-registered", f"sale 0x{stray.receipt_id.hex()}"),
    ]
    events = assert_epcis_document(json.loads(out.read_text()))
    assert [cbv_word(e["bizStep"], "bizStep") for e in events] == [
        "commissioning",
        "retail_selling",
    ]


# -- Verifiable Credentials ------------------------------------------------------------------


@pytest.fixture
def key_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The state directory the issuer key is kept in when ``--issuer-key`` is not given."""
    home = tmp_path / "state"
    home.mkdir()
    monkeypatch.setattr(paths, "state_dir", lambda: home)
    return home


def _credentials(out: Path) -> dict[str, dict[str, Any]]:
    """The credentials written into the directory ``out``, by endorsement id."""
    found = [json.loads(f.read_text()) for f in sorted(out.glob("*.json"))]
    return {c["credentialSubject"]["endorsementId"]: c for c in found}


def _iso(timestamp: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def test_credentials_follow_vc_data_model_2_and_their_proofs_verify(
    world: AuditWorld, tmp_path: Path, key_home: Path
) -> None:
    a = world.accounts
    kept = world.endorse(unit_price=12_800)
    revoked = world.endorse(unit_price=9_900, room="room-2")
    world.revoke_endorsement(revoked)
    out = tmp_path / "credentials"
    result = export(world, "credentials", "--out", str(out))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    issuer = re.fullmatch(r"issuer (did:key:z\w+) \(key (.+), made now\)", lines[0])
    assert issuer is not None, lines[0]
    assert issuer.group(2) == str(key_home / "credential-issuer-key.pem")
    assert lines[1:3] == ["OK: credential-written: 2 checked", "OK: product-registered: 2 checked"]
    assert lines[3].startswith(f"wrote 2 endorsement credentials to {out} (1 revoked; chain ")
    credentials = _credentials(out)
    assert credentials.keys() == {"0x" + e.hex() for e in (kept, revoked)}
    chain_id = world.w3.eth.chain_id
    registry = _registry(world)
    for endorsement_id, credential in credentials.items():
        assert_vc2(credential)
        assert verify_ecdsa_jcs_2019(credential)
        assert credential["issuer"] == issuer.group(1)
        proof = credential["proof"]
        assert (proof["cryptosuite"], proof["proofPurpose"]) == (
            "ecdsa-jcs-2019",
            "assertionMethod",
        )
        assert proof["verificationMethod"].split("#")[0] == credential["issuer"]
        subject = credential["credentialSubject"]
        endorsement = registry.endorsements[bytes.fromhex(endorsement_id[2:])]
        assert subject["id"] == f"did:pkh:eip155:{chain_id}:{a.anchor.address}"
        assert subject["name"] == "@tea-master-li"
        assert subject["endorsedProduct"] == {
            "id": f"https://id.gs1.org/01/{world.gtin:014d}",
            "productId": "0x" + world.product_id.hex(),
            "gtin": f"{world.gtin:014d}",
            "name": "Longjing 250 g",
        }
        assert subject["sponsored"] is True
        assert subject["commissionBps"] == 1_500
        assert subject["promisedUnitPrice"] == str(endorsement.unit_price)
        assert subject["priceCurrency"] == "CNY"
        assert subject["termsValidFrom"] == _iso(endorsement.valid_from)
        assert subject["termsValidUntil"] == _iso(endorsement.valid_until)
        assert credential["validFrom"] == _iso(endorsement.valid_from)
        recorded, *revocation = credential["evidence"]
        assert recorded["chainId"] == f"eip155:{chain_id}"
        assert recorded["contract"] == world.deployment.address("AnchorRegistry")
        assert recorded["eventName"] == "EndorsementRecorded"
        logs = _logs_of(world.w3, world.deployment, recorded["transactionHash"])
        found = [log for log in logs if log.name == "EndorsementRecorded"]
        assert [log.args["endorsementId"] for log in found] == [endorsement.endorsement_id]
        assert found[0].block_number == recorded["blockNumber"]
        if endorsement.endorsement_id == kept:
            assert "revokedAt" not in subject
            assert revocation == []
            assert credential["validUntil"] == _iso(endorsement.valid_until)
            continue
        # Revoked: valid until the revocation, which the evidence names.
        assert endorsement.revoked_at is not None
        assert subject["revokedAt"] == credential["validUntil"] == _iso(endorsement.revoked_at)
        (revoking,) = revocation
        assert revoking["eventName"] == "EndorsementRevoked"
        logs = _logs_of(world.w3, world.deployment, revoking["transactionHash"])
        found = [log for log in logs if log.name == "EndorsementRevoked"]
        assert [log.args["endorsementId"] for log in found] == [revoked]
        assert found[0].block_number == revoking["blockNumber"]
    by_room = {c["credentialSubject"]["roomId"]: eid for eid, c in credentials.items()}
    assert by_room["0x" + label_hash("room-2").hex()] == "0x" + revoked.hex()


def test_a_changed_credential_no_longer_verifies(
    world: AuditWorld, tmp_path: Path, key_home: Path
) -> None:
    world.endorse()
    out = tmp_path / "credentials.json"
    assert export(world, "credentials", "--out", str(out)).exit_code == 0
    (credential,) = json.loads(out.read_text())
    assert verify_ecdsa_jcs_2019(credential)
    assert verify_proof(credential)
    other = did_key_of(ec.generate_private_key(ec.SECP256R1()))
    changes = {
        "price": lambda c: c["credentialSubject"].update(promisedUnitPrice="1"),
        "validity": lambda c: c.update(validUntil="2099-01-01T00:00:00Z"),
        "evidence": lambda c: c["evidence"][0].update(blockNumber=1),
        "issuer": lambda c: c.update(issuer=other),
        "created": lambda c: c["proof"].update(created="2020-01-01T00:00:00Z"),
        "key": lambda c: c["proof"].update(verificationMethod=f"{other}#{other[8:]}"),
        "context": lambda c: c["proof"].update({"@context": [VC_V2_CONTEXT]}),
    }
    for name, change in changes.items():
        changed = json.loads(json.dumps(credential))
        change(changed)
        assert not verify_ecdsa_jcs_2019(changed), name
        assert not verify_proof(changed), name


def did_key_of(key: ec.EllipticCurvePrivateKey) -> str:
    """A key's did:key, built here: base58btc of the p256-pub varint and compressed point."""
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    number = int.from_bytes(P256_PUB + point, "big")
    digits = ""
    while number:
        number, digit = divmod(number, 58)
        digits = BASE58_BTC[digit] + digits
    return "did:key:z" + digits


def test_the_multikey_encoding_matches_the_w3c_test_vector_key_pair() -> None:
    # The P-256 key pair published with the W3C Data Integrity ECDSA Cryptosuites test vectors.
    public = "zDnaepBuvsQ8cpsWrVKw8fbpGpvPeNSjVPTWoq6cRqaYzBKVP"
    secret = base58btc_decode("42twTcNeSYcnqg1FLuSFs2bsGH3ZqbRHFmvS9XMsYhjxvHN")
    assert secret[:2] == P256_PRIV
    key = ec.derive_private_key(int.from_bytes(secret[2:], "big"), ec.SECP256R1())
    assert multikey(key.public_key()) == public
    assert did_key_of(key) == f"did:key:{public}"
    assert did_key_public_key(f"did:key:{public}#{public}").public_numbers() == (
        key.public_key().public_numbers()
    )


def test_the_issuer_key_is_made_once_and_reused(
    world: AuditWorld, tmp_path: Path, key_home: Path
) -> None:
    world.endorse()
    first = export(world, "credentials", "--out", str(tmp_path / "a.json"))
    assert first.exit_code == 0, first.output
    key_file = key_home / "credential-issuer-key.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    did = did_key_of(key)
    assert first.stdout.splitlines()[0] == f"issuer {did} (key {key_file}, made now)"
    second = export(world, "credentials", "--out", str(tmp_path / "b.json"))
    assert second.stdout.splitlines()[0] == f"issuer {did} (key {key_file})"
    (credential,) = json.loads((tmp_path / "b.json").read_text())
    assert credential["issuer"] == did


def test_an_issuer_key_file_signs_and_other_keys_are_refused(
    world: AuditWorld, tmp_path: Path, key_home: Path
) -> None:
    world.endorse()
    key = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "issuer.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    out = tmp_path / "c.json"
    result = export(world, "credentials", "--out", str(out), "--issuer-key", str(pem))
    assert result.exit_code == 0, result.output
    (credential,) = json.loads(out.read_text())
    assert credential["issuer"] == did_key_of(key)
    assert verify_ecdsa_jcs_2019(credential)
    assert not list(key_home.iterdir())  # no key made in the state directory
    p384 = tmp_path / "p384.pem"
    p384.write_bytes(
        ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    refused = export(world, "credentials", "--out", str(out), "--issuer-key", str(p384))
    assert refused.exit_code == 2
    assert "is not a P-256 (secp256r1) private key" in refused.stderr
    missing = export(world, "credentials", "--out", str(out), "--issuer-key", str(tmp_path / "x"))
    assert missing.exit_code == 2
    assert "cannot read the issuer key" in missing.stderr


def test_the_credentials_cursor_reads_new_blocks_and_applies_revocations(
    world: AuditWorld, tmp_path: Path, key_home: Path
) -> None:
    first = world.endorse()
    cursor = tmp_path / "credentials.cursor"

    def run(name: str) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
        out, report_file = tmp_path / name, tmp_path / f"{name}.report.json"
        result = export(
            world, "credentials", "--out", str(out), "--cursor", str(cursor),
            "--report", str(report_file),
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        return _credentials(out), json.loads(report_file.read_text())["stats"]

    before, stats = run("one")
    assert stats["scanned_from"] == world.deployment.start_block
    assert stats["to_block"] == world.w3.eth.block_number
    assert list(before) == ["0x" + first.hex()]
    assert json.loads(cursor.read_text())["format"] == "liveproof-credentials-cursor/1"

    world.revoke_endorsement(first)
    second = world.endorse(room="room-2")
    after, later = run("two")
    # Only the blocks since the first run were read, yet every credential is written.
    assert later["scanned_from"] == stats["to_block"] + 1
    assert later["to_block"] == world.w3.eth.block_number
    assert (later["endorsements"], later["revoked"]) == (2, 1)
    assert after.keys() == {"0x" + first.hex(), "0x" + second.hex()}
    revoked = after["0x" + first.hex()]
    assert "revokedAt" not in before["0x" + first.hex()]["credentialSubject"]
    assert revoked["validUntil"] == revoked["credentialSubject"]["revokedAt"]
    assert [e["eventName"] for e in revoked["evidence"]] == [
        "EndorsementRecorded",
        "EndorsementRevoked",
    ]
    for credential in after.values():
        assert_vc2(credential)
        assert verify_ecdsa_jcs_2019(credential)
    # The same documents as an export from scratch, proofs aside.
    full = tmp_path / "full"
    assert export(world, "credentials", "--out", str(full)).exit_code == 0
    fresh = _credentials(full)

    def unsecured(docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return {k: {n: v for n, v in d.items() if n != "proof"} for k, d in docs.items()}

    assert unsecured(after) == unsecured(fresh)
    # Nothing new: nothing read, the same credentials.
    again, last = run("three")
    assert last["scanned_from"] == later["to_block"] + 1
    assert unsecured(again) == unsecured(after)


def test_an_endorsement_of_an_unregistered_product_is_a_fail(
    deployment: Deployment, tmp_path: Path
) -> None:
    # The AnchorRegistry refuses such endorsements, so this state is built by hand.
    anchor = "0x" + "ab" * 20
    state = EndorsementState(ScanCursor(0))
    listed = Product(os.urandom(32), anchor, 6_901_234_567_892, "Listed", 1, "0x" + "01" * 32)
    state.registry.products[listed.product_id] = listed
    for product_id in (listed.product_id, os.urandom(32)):
        endorsement = Endorsement(
            os.urandom(32), Web3.to_checksum_address(anchor), product_id, bytes(32), bytes(32),
            False, 0, 100, b"CNY", 1_700_000_000, 1_800_000_000, 2, "0x" + "02" * 32,
        )  # fmt: skip
        state.registry.endorsements[endorsement.endorsement_id] = endorsement
    key = IssuerKey(ec.generate_private_key(ec.SECP256R1()), tmp_path / "k.pem")
    credentials, report = secured_credentials(
        state, deployment, key, created="2026-01-01T00:00:00Z"
    )
    assert len(credentials) == 2
    assert all(verify_ecdsa_jcs_2019(c) for c in credentials)
    assert report.checked == {"credential-written": 2, "product-registered": 2}
    (finding,) = report.findings
    unknown = credentials[1]["credentialSubject"]
    assert finding.check == "product-registered"
    assert finding.subject == f"endorsement {unknown['endorsementId']}"
    assert finding.found == f"unregistered product {unknown['endorsedProduct']['productId']}"
    assert "id" not in unknown["endorsedProduct"]  # no GTIN, so no Digital Link


def _registry(world: AuditWorld) -> Any:
    from chain.audit.verified import read_registry

    return read_registry(world.w3, world.deployment)


def test_credentials_to_one_json_file(world: AuditWorld, tmp_path: Path, key_home: Path) -> None:
    world.endorse()
    out = tmp_path / "credentials.json"
    report_file = tmp_path / "report.json"
    result = export(world, "credentials", "--out", str(out), "--report", str(report_file))
    assert result.exit_code == 0, result.output
    credentials = json.loads(out.read_text())
    assert isinstance(credentials, list)
    assert len(credentials) == 1
    assert_vc2(credentials[0])
    written = json.loads(report_file.read_text())
    assert written["format"] == "liveproof-audit-credentials/1"
    assert (written["ok"], written["findings"]) == (True, [])
    assert {name: (c["checked"], c["failed"]) for name, c in written["checks"].items()} == {
        "credential-written": (1, 0),
        "product-registered": (1, 0),
    }
    assert written["stats"]["issuer"] == credentials[0]["issuer"]
    assert written["stats"]["endorsements"] == 1


def test_a_receipt_id_committed_twice_is_exported_once_and_fails(
    world: AuditWorld, tmp_path: Path
) -> None:
    session = world.open_session()
    sale = world.sale(session)
    world.commit([sale, world.sale(session)])
    again = world.commit([sale, world.sale(session, quantity=2)])
    out = tmp_path / "epcis.json"
    result = export(world, "epcis", "--manifests", str(world.manifests), "--out", str(out))
    assert result.exit_code == 1, result.output
    assert (
        f"FAIL: duplicate-receipt receipt 0x{sale.receipt_id.hex()}: committed once vs "
        f"committed again in batch 0x{again.hex()} (block {world.w3.eth.block_number})"
    ) in result.stdout.splitlines()
    events = assert_epcis_document(json.loads(out.read_text()))
    assert len([e for e in events if e["bizStep"] == "retail_selling"]) == 3


def test_exports_exit_2_on_unreachable_input(world: AuditWorld, tmp_path: Path) -> None:
    dep = str(_deployment_file(world))
    for command in (
        ["export", "credentials", "--out", str(tmp_path / "c.json")],
        ["export", "epcis", "--manifests", str(world.manifests), "--out", str(tmp_path / "e")],
    ):
        result = runner.invoke(app, [*command, "--rpc", "http://127.0.0.1:9", "--deployment", dep])
        assert result.exit_code == 2, result.output
        assert "cannot reach" in result.stderr
    result = runner.invoke(
        app, ["export", "manifests", "--api", "http://127.0.0.1:9", "--out", str(tmp_path / "m")]
    )
    assert result.exit_code == 2, result.output
    assert "error: cannot reach http://127.0.0.1:9/v1/batches" in result.stderr


# -- manifests from a live API ---------------------------------------------------------------


@pytest.fixture
def live_api(
    w3: Web3,
    deployment: Deployment,
    accounts: Accounts,
    anvil: DevnetInfo,
    deployments_dir: Path,
    tmp_path: Path,
) -> Iterator[str]:
    """The API served over HTTP with 10 orders and a refund committed in three batches (and
    one more order sealed into a fourth batch, not yet on chain); its base URL."""
    database_url = f"sqlite:///{tmp_path / 'api.db'}"
    upgrade(database_url)
    settings = Settings(
        database_url=database_url, rpc_url=anvil.rpc_url, relayer_key=SecretStr(ANVIL_DEV_KEYS[6]),
        deployments_dir=deployments_dir, run_committer=False, batch_size=4, batch_interval=0.05,
    )  # fmt: skip
    catalogue = seed_catalogue(
        database_url, w3, deployment,
        registrar=accounts.relayer, brand=accounts.brand, anchor=accounts.anchor,
    )  # fmt: skip
    engine = make_engine(database_url, pool_size=2)
    with Session(engine) as session:
        _, token = create_key(session, role=Role.INGEST, label="ingest")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning",
                       loop="asyncio")
    )  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    committer = Committer(
        writer(engine), ChainGateway(settings, engine), batch_size=4, interval=0.05
    )
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.05)
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=auth, timeout=30) as http:
            assert (
                http.post("/v1/rooms", json={"room_id": "room-1", "name": "Tea"}).status_code == 201
            )
            opened = http.post("/v1/sessions", json={"session_id": "live-1", "room_id": "room-1",
                                                     "anchor": catalogue.anchor})  # fmt: skip
            assert opened.status_code == 201, opened.text
            orders = [
                {"room_id": "room-1", "session_id": "live-1", "gtin": catalogue.gtin,
                 "quantity": 1 + i % 3, "unit_price": 12_800, "currency": "CNY",
                 "buyer_ref": f"buyer-{i}"}
                for i in range(10)
            ]  # fmt: skip
            bulk = http.post("/v1/orders/bulk", json={"orders": orders},
                             headers={"Idempotency-Key": "bulk"})  # fmt: skip
            assert bulk.status_code == 201, bulk.text
            code = bulk.json()["receipts"][0]["receipt_code"]
            refund = http.post("/v1/refunds", json={"receipt_code": code, "quantity": 1},
                               headers={"Idempotency-Key": "refund"})  # fmt: skip
            assert refund.status_code == 201, refund.text
            assert committer.leader.try_acquire()
            assert committer.run_once().sealed == 3
            # One more order, sealed into a batch that is not committed yet.
            last = http.post("/v1/orders", json={**orders[0], "buyer_ref": "late"},
                             headers={"Idempotency-Key": "late"})  # fmt: skip
            assert last.status_code == 201, last.text
            assert committer.seal_batch() is not None
        yield base
    finally:
        committer.leader.release()
        server.should_exit = True
        thread.join(timeout=15)
        engine.dispose()


def test_manifests_exported_from_the_api_rebuild_every_committed_root(
    live_api: str, w3: Web3, deployment: Deployment, tmp_path: Path
) -> None:
    out = tmp_path / "manifests"
    result = runner.invoke(app, ["export", "manifests", "--api", live_api, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"saved 3 batch manifests to {out} (1 sealed batches not yet committed left out)" in (
        result.stdout
    )
    listed = httpx.get(f"{live_api}/v1/batches").json()
    committed = {b["root"] for b in listed if b["status"] == "committed"}
    assert {p.stem for p in out.glob("*.json")} == committed
    for root in committed:
        assert (out / f"{root}.json").read_bytes() == httpx.get(
            f"{live_api}/v1/batches/{root}"
        ).content
    # Paging two at a time re-reads the page boundary and still finds each batch once.
    again = tmp_path / "paged"
    again.mkdir()
    saved, pending = download_manifests(live_api, again, page_size=2)
    assert sorted(saved) == sorted(committed)
    assert pending == 1
    # What was kept is enough to audit the chain, with no API.
    dep = tmp_path / "deployment.json"
    dep.write_text(deployment.to_json())
    rpc = w3.provider.endpoint_uri  # type: ignore[attr-defined]
    audit = runner.invoke(
        app, ["audit", "chain", "--rpc", rpc, "--deployment", str(dep), "--manifests", str(out)]
    )
    assert audit.exit_code == 0, audit.output
    assert "OK: batch-root: 3 checked" in audit.stdout
    sales = runner.invoke(
        app,
        ["report", "sales", "--rpc", rpc, "--deployment", str(dep), "--api", live_api,
         "--by", "product", "--out", str(tmp_path / "sales.json")],
    )  # fmt: skip
    assert sales.exit_code == 0, sales.output
    (row,) = json.loads((tmp_path / "sales.json").read_text())
    assert (row["units_sold"], row["units_refunded"], row["orders"]) == (
        sum(1 + i % 3 for i in range(10)), 1, 10,
    )  # fmt: skip
