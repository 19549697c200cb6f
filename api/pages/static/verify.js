// LiveProof receipt check, run in the shopper's browser against the chain's own JSON-RPC.
//
// Given a proof bundle (liveproof-receipt-proof/1) it: compares the node's chain id; recomputes
// the receipt leaf from its values (keccak256(keccak256(abi.encode(values))), as
// OpenZeppelin's StandardMerkleTree does) and folds the proof to the root; asks the ledger
// contract with eth_call whether it verifies the proof and when the root was committed; and
// finds the commit event in the stated block and transaction. On a receipt page it also checks
// that the bundle is this receipt's (its id and the values the page shows), and a ledger
// address the shopper pins replaces the bundle's own. keccak256 is js-sha3's.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("lp-verify-config").textContent);
  const M = config.messages;
  const FORMAT = "liveproof-receipt-proof/1";

  function hexToBytes(hex, what) {
    if (typeof hex !== "string" || !/^0x([0-9a-fA-F]{2})*$/.test(hex)) {
      throw new Error(what + ": expected 0x-prefixed hex");
    }
    const out = new Uint8Array((hex.length - 2) / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 + 2 * i, 2), 16);
    return out;
  }

  function bytesToHex(bytes) {
    return "0x" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function keccak(bytes) {
    return new Uint8Array(window.keccak256.arrayBuffer(bytes));
  }

  function concat(parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  // One ABI word of a static value: bytesN right-padded, uintN big-endian left-padded.
  function word(type, value, name) {
    const out = new Uint8Array(32);
    let m = /^bytes(\d+)$/.exec(type);
    if (m) {
      const raw = hexToBytes(value, name);
      if (raw.length !== Number(m[1])) throw new Error(name + ": expected " + m[1] + " bytes");
      out.set(raw, 0);
      return out;
    }
    m = /^uint(\d+)$/.exec(type);
    if (!m) throw new Error(name + ": unsupported type " + type);
    if (typeof value !== "number" && !(typeof value === "string" && /^\d+$/.test(value))) {
      throw new Error(name + ": expected an unsigned integer");
    }
    const n = BigInt(value);
    if (n >= 1n << BigInt(m[1])) throw new Error(name + ": does not fit " + type);
    const hex = n.toString(16).padStart(64, "0");
    return hexToBytes("0x" + hex, name);
  }

  function leafHash(leaf, fields, types) {
    const names = Object.keys(leaf).sort().join(",");
    if (names !== fields.slice().sort().join(",")) throw new Error("leaf fields differ from leaf v1");
    const encoded = concat(fields.map((name, i) => word(types[i], leaf[name], name)));
    return keccak(keccak(encoded));
  }

  function hashPair(a, b) {
    return bytesToHex(a) < bytesToHex(b) ? keccak(concat([a, b])) : keccak(concat([b, a]));
  }

  function fold(leaf, proof) {
    return proof.reduce((node, sibling) => hashPair(node, sibling), leaf);
  }

  // The bundle is unusable or the node could not be asked (or answered with an error): the
  // verdict is "could not check", not "not verified" (liveproof verify-receipt exits 2).
  class CannotCheck extends Error {}

  async function rpc(url, method, params) {
    let answer;
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: method, params: params }),
      });
      if (!response.ok) throw new Error("HTTP " + response.status);
      answer = await response.json();
    } catch (err) {
      throw new CannotCheck(url + " " + method + ": " + err.message);
    }
    if (answer.error) throw new CannotCheck(method + ": " + (answer.error.message || "error"));
    return answer.result;
  }

  function selector(signature) {
    return window.keccak256(signature).slice(0, 8);
  }

  function strip(hex) {
    return hex.slice(2).toLowerCase();
  }

  function uintWord(n) {
    return BigInt(n).toString(16).padStart(64, "0");
  }

  function verifyCall(root, leaf, proof) {
    return (
      "0x" + selector("verifyReceipt(bytes32,bytes32,bytes32[])") + strip(root) + strip(leaf) +
      uintWord(96) + uintWord(proof.length) + proof.map(strip).join("")
    );
  }

  function expect(condition, step, expected, found) {
    if (!condition) throw new Error(M[step] + ": " + expected + " ≠ " + found);
  }

  const HEX32 = /^0x[0-9a-fA-F]{64}$/;
  const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
  const FIELDS = ["format", "chainId", "ledger", "batchId", "root", "txHash", "blockNumber",
                  "leafTypes", "leaf", "proof"];

  // The same shape rules as `liveproof verify-receipt` (chain/proof_bundle.py): a bundle that
  // breaks one cannot be checked at all.
  function checkShape(bundle) {
    const bad = (why) => { throw new CannotCheck("unusable bundle: " + why); };
    if (!bundle || typeof bundle !== "object" || Array.isArray(bundle)) bad("not a JSON object");
    const missing = FIELDS.filter((name) => !(name in bundle));
    if (missing.length) bad("missing fields: " + missing.join(", "));
    if (bundle.format !== FORMAT) bad("format must be " + FORMAT);
    const expectedTypes = config.leafTypes.join(",");
    if (!Array.isArray(bundle.leafTypes) || bundle.leafTypes.join(",") !== expectedTypes) {
      bad("leafTypes is not receipt leaf v1");
    }
    if (!Number.isSafeInteger(bundle.chainId) || bundle.chainId <= 0) {
      bad("chainId must be a positive integer");
    }
    if (!Number.isSafeInteger(bundle.blockNumber) || bundle.blockNumber < 0) {
      bad("blockNumber must be a non-negative integer");
    }
    if (typeof bundle.ledger !== "string" || !ADDRESS.test(bundle.ledger)) {
      bad("ledger must be an address");
    }
    for (const name of ["root", "batchId", "txHash"]) {
      if (typeof bundle[name] !== "string" || !HEX32.test(bundle[name])) {
        bad(name + " must be a 0x-prefixed 32-byte hex string");
      }
    }
    if (bundle.batchId.toLowerCase() !== bundle.root.toLowerCase()) {
      bad("batchId and root differ (a batch is named by its root)");
    }
    if (!Array.isArray(bundle.proof) || !bundle.proof.every((p) => HEX32.test(p))) {
      bad("proof must be a list of 32-byte hex strings");
    }
    if (!bundle.leaf || typeof bundle.leaf !== "object") bad("leaf must be an object");
  }

  // On a receipt page: the bundle must be this receipt's, with the values the page shows.
  function checkReceipt(leaf, expected) {
    // In leaf order, so that another receipt's bundle is named for its receiptId first.
    for (const name of config.leafFields.filter((field) => field in expected)) {
      const value = expected[name];
      const found = leaf[name];
      const same = typeof value === "string"
        ? typeof found === "string" && found.toLowerCase() === value.toLowerCase()
        : String(found) === String(value);
      expect(same, "receipt", name + " " + value, String(found));
    }
  }

  // Runs every check; `report(step, detail)` is called as each one passes. `expected`: the
  // receipt the page shows (leaf values by name) or null; `pinnedLedger`: an address or "".
  async function verify(bundle, rpcUrl, report, expected, pinnedLedger) {
    if (typeof window.keccak256 !== "function") throw new CannotCheck("keccak256 is missing");
    checkShape(bundle);
    if (expected) {
      checkReceipt(bundle.leaf, expected);
      report("receipt", expected.receiptId);
    }
    if (pinnedLedger) {
      if (!ADDRESS.test(pinnedLedger)) throw new CannotCheck(M.ledger + ": not an address");
      expect(
        bundle.ledger.toLowerCase() === pinnedLedger.toLowerCase(),
        "ledger", pinnedLedger, bundle.ledger,
      );
    }
    const chainId = BigInt(await rpc(rpcUrl, "eth_chainId", []));
    expect(chainId === BigInt(bundle.chainId), "chain", bundle.chainId, chainId);
    report("chain", String(chainId));

    let leaf, proof;
    try {
      leaf = leafHash(bundle.leaf, config.leafFields, config.leafTypes);
      proof = bundle.proof.map((p, i) => hexToBytes(p, "proof[" + i + "]"));
    } catch (err) {
      throw new CannotCheck("unusable bundle: " + err.message);
    }
    const root = bytesToHex(fold(leaf, proof)).toLowerCase();
    expect(root === String(bundle.root).toLowerCase(), "leaf", bundle.root, root);
    report("leaf", root);

    const ledger = bundle.ledger;
    const call = { to: ledger, data: verifyCall(root, bytesToHex(leaf), bundle.proof) };
    const ok = await rpc(rpcUrl, "eth_call", [call, "latest"]);
    expect(ok !== "0x" && BigInt(ok) === 1n, "ledger", "true", ok === "0x" ? "no contract" : "false");
    report("ledger", ledger);

    const batch = await rpc(rpcUrl, "eth_call", [
      { to: ledger, data: "0x" + selector("batch(bytes32)") + strip(root) },
      "latest",
    ]);
    const block = BigInt("0x" + batch.slice(2 + 128, 2 + 192));
    expect(block === BigInt(bundle.blockNumber), "batch", bundle.blockNumber, block);
    report("batch", String(block));

    const topics = [
      ["0x" + window.keccak256("BatchCommitted(bytes32,uint32)"),
       "0x" + window.keccak256("ReceiptRecorded(bytes32)")],
      root,
    ];
    const at = "0x" + block.toString(16);
    const logs = await rpc(rpcUrl, "eth_getLogs", [
      { address: ledger, fromBlock: at, toBlock: at, topics: topics },
    ]);
    const tx = logs.length ? logs[0].transactionHash.toLowerCase() : "no commit event";
    expect(tx === String(bundle.txHash).toLowerCase(), "tx", bundle.txHash, tx);
    report("tx", tx);
    // What is now proven, in the shopper's terms.
    const l = bundle.leaf;
    report("proven", [
      l.receiptId,
      (Number(l.kind) === 1 ? M.refund : M.sale) + " × " + l.quantity,
      l.unitPrice + " " + currencyOf(l.currency),
    ].join(" · "));
  }

  function currencyOf(hex) {
    try {
      return String.fromCharCode(...hexToBytes(hex, "currency"));
    } catch (err) {
      return String(hex);
    }
  }

  function show(box, state, title) {
    box.hidden = false;
    box.dataset.state = state;
    box.querySelector(".verdict-title").textContent = title;
  }

  async function run(form, box) {
    const steps = box.querySelector(".steps");
    steps.textContent = "";
    show(box, "checking", M.verifying);
    const report = (step, detail) => {
      const item = document.createElement("li");
      item.textContent = "✔ " + M[step] + " — " + detail;
      steps.appendChild(item);
    };
    try {
      let bundle;
      const file = form.querySelector("input[type=file]");
      try {
        if (file) {
          bundle = JSON.parse(await file.files[0].text());
        } else {
          const response = await fetch(form.dataset.bundleUrl, { cache: "no-store" });
          if (!response.ok) throw new Error("HTTP " + response.status);
          bundle = await response.json();
        }
      } catch (err) {
        throw new CannotCheck("proof bundle: " + err.message);
      }
      const expected = form.dataset.expect ? JSON.parse(form.dataset.expect) : null;
      const pin = form.querySelector("input[name=ledger]");
      await verify(
        bundle,
        form.querySelector("input[name=rpc]").value.trim(),
        report,
        expected,
        pin ? pin.value.trim() : "",
      );
      show(box, "verified", M.verified);
    } catch (err) {
      const state = err instanceof CannotCheck ? "error" : "not-verified";
      show(box, state, (state === "error" ? M.error : M.notVerified) + ": " + err.message);
    }
  }

  for (const form of document.querySelectorAll("form[data-verify]")) {
    const box = form.parentElement.querySelector("[data-testid=verdict]");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      run(form, box);
    });
  }
})();
