// LiveProof endorsement signing: the anchor's browser wallet (EIP-1193) signs the EIP-712
// Endorsement with eth_signTypedData_v4, and the page hands it to POST /v1/endorsements.
//
// The domain, the anchor's nonce, the product and its live claims come from the API's public
// reads; the wallet shows the anchor every field before signing.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("lp-sign-config").textContent);
  const M = config.messages;
  const form = document.getElementById("endorse");
  const connectButton = document.getElementById("connect");
  const submitButton = document.getElementById("submit");
  const accountLabel = document.querySelector("[data-testid=account]");
  const box = document.querySelector("[data-testid=sign-result]");
  let account = null;

  function show(state, title, body) {
    box.hidden = false;
    box.dataset.state = state;
    box.querySelector(".verdict-title").textContent = title;
    const target = box.querySelector(".verdict-body");
    target.textContent = "";
    if (body instanceof Node) target.appendChild(body);
    else target.textContent = body || "";
  }

  async function getJson(path) {
    const response = await fetch(path, { headers: { Accept: "application/json" } });
    const body = await response.json();
    if (!response.ok) throw new Error(body.detail || body.title || "HTTP " + response.status);
    return body;
  }

  function hexToBytes(hex) {
    const out = new Uint8Array((hex.length - 2) / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 + 2 * i, 2), 16);
    return out;
  }

  // keccak256 of the sorted claim ids concatenated (chain.actions.claims_digest).
  function claimsDigest(ids) {
    const sorted = ids.map((id) => id.toLowerCase()).sort();
    const joined = new Uint8Array(32 * sorted.length);
    sorted.forEach((id, i) => joined.set(hexToBytes(id), 32 * i));
    return "0x" + window.keccak256(joined);
  }

  function asciiHex(text) {
    return "0x" + Array.from(text, (c) => c.charCodeAt(0).toString(16).padStart(2, "0")).join("");
  }

  // A decimal amount typed by the anchor, in minor units of the currency.
  function minorUnits(text, decimals) {
    const match = /^(\d+)(?:\.(\d+))?$/.exec(text.trim());
    if (!match || (match[2] || "").length > decimals) throw new Error("bad amount: " + text);
    return Number(match[1] + (match[2] || "").padEnd(decimals, "0"));
  }

  async function connect() {
    const accounts = await window.ethereum.request({ method: "eth_requestAccounts" });
    if (!accounts || !accounts.length) throw new Error("the wallet gave no account");
    account = accounts[0];
    accountLabel.hidden = false;
    accountLabel.textContent = M.signingAs + " " + account;
    submitButton.disabled = false;
  }

  async function signAndSubmit() {
    const gtin = form.gtin.value;
    const [chain, nonces, product, claims] = await Promise.all([
      getJson("/v1/chain"),
      getJson("/v1/chain/nonces/" + account),
      getJson("/v1/products/" + gtin),
      getJson("/v1/products/" + gtin + "/claims"),
    ]);
    const live = claims.filter((c) => c.revoked_tx === null).map((c) => c.claim_id);
    const now = Math.floor(Date.now() / 1000);
    const currency = form.currency.value.trim().toUpperCase();
    // The browser's own ISO 4217 data says how many minor units the currency has.
    const decimals = new Intl.NumberFormat("en", { style: "currency", currency: currency })
      .resolvedOptions().maximumFractionDigits;
    const body = {
      anchor: account,
      product_id: product.product_id,
      claims_digest: claimsDigest(live),
      room_id: form.room.value.trim(),
      sponsored: form.sponsored.checked,
      commission_bps: Math.round(Number(form.commission.value) * 100),
      unit_price: minorUnits(form.price.value, decimals),
      currency: currency,
      valid_from: now,
      valid_until: now + Number(form.days.value) * 86400,
      nonce: nonces.AnchorRegistry,
      deadline: now + 3600,
    };
    const typed = {
      types: config.types,
      primaryType: "Endorsement",
      domain: chain.domains.AnchorRegistry,
      message: {
        anchor: body.anchor,
        productId: body.product_id,
        claimsDigest: body.claims_digest,
        roomId: "0x" + window.keccak256(body.room_id),
        sponsored: body.sponsored,
        commissionBps: body.commission_bps,
        unitPrice: body.unit_price,
        currency: asciiHex(currency),
        validFrom: body.valid_from,
        validUntil: body.valid_until,
        nonce: body.nonce,
        deadline: body.deadline,
      },
    };
    show("signing", M.signing);
    body.signature = await window.ethereum.request({
      method: "eth_signTypedData_v4",
      params: [account, JSON.stringify(typed)],
    });
    show("submitting", M.submitting);
    const response = await fetch("/v1/endorsements", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    if (!response.ok) {
      show("refused", M.refused + ": " + (answer.title || response.status), answer.detail || "");
      return;
    }
    show("recorded", M.recorded, recordedTerms(answer, product, decimals));
    box.dataset.endorsementId = answer.endorsement_id;
  }

  // The endorsement as the chain recorded it (the API's answer), for the anchor to re-read.
  function recordedTerms(answer, product, decimals) {
    const out = document.createElement("div");
    const terms = document.createElement("dl");
    terms.className = "facts";
    terms.dataset.testid = "recorded-terms";
    const price = (answer.unit_price / 10 ** decimals).toFixed(decimals) + " " + answer.currency;
    const disclosure = (answer.sponsored ? "广告 / Ad" : M.notSponsored) + " · " +
      M.commission + " " + (answer.commission_bps / 100) + "%";
    const day = (t) => new Date(t * 1000).toISOString().slice(0, 10);
    const rows = [
      [M.endorsementId, answer.endorsement_id, "endorsement-id"],
      [M.product, product.name + " · " + product.gtin, "product"],
      [M.room, answer.room_id, "room"],
      [M.disclosure, disclosure, "disclosure"],
      [M.promisedPrice, price, "price"],
      [M.validWindow, day(answer.valid_from) + " – " + day(answer.valid_until), "window"],
      [M.block, String(answer.block_number), "block"],
    ];
    for (const [label, value, testid] of rows) {
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.textContent = value;
      dd.dataset.testid = "recorded-" + testid;
      terms.append(dt, dd);
    }
    const links = document.createElement("p");
    const txLink = document.createElement("a");
    txLink.href = config.txUrl.replace("{tx}", answer.tx_hash);
    txLink.textContent = M.tx;
    const profile = document.createElement("a");
    profile.href = "/a/" + answer.anchor;
    profile.textContent = M.seeProfile;
    profile.dataset.testid = "profile-link";
    links.append(txLink, " · ", profile);
    out.append(terms, links);
    return out;
  }

  if (!window.ethereum) {
    document.querySelector("[data-testid=no-wallet]").hidden = false;
    connectButton.disabled = true;
    return;
  }
  connectButton.addEventListener("click", () => {
    connect().catch((err) => show("refused", M.refused, err.message));
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitButton.disabled = true;
    signAndSubmit()
      .catch((err) => show("refused", M.refused, err.message))
      .finally(() => {
        submitButton.disabled = false;
      });
  });
})();
