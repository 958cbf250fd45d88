// Verify a ledger-anchor-proof-v1 document in the browser, trusting neither the console nor the
// operator: (1) the leaf is keccak256(keccak256(abi.encode(values))) of the values shown (OpenZeppelin
// StandardMerkleTree), (2) the path folds, with sorted-pair hashing, from that leaf to the root,
// (3) the chain's TraceAnchor contract answers verifyValues(root, proof, abi.encode(values)) = true
// by eth_call (root anchored and proof valid, checked by the contract itself), and (4) the anchoring
// transaction's receipt is in the chain, successful, in the block the document names.
// Hashing: js-sha3 (vendored); JSON-RPC: fetch to the node's URL shown (editable).
(function () {
  "use strict";
  var doc = JSON.parse(document.getElementById("proof-doc").textContent);
  var button = document.getElementById("verify");
  var rpcInput = document.getElementById("rpc-url");
  var out = document.getElementById("verify-result");

  function hexToBytes(hex) {
    var h = hex.replace(/^0x/, "");
    if (h.length % 2) { throw new Error("odd hex length"); }
    var b = new Uint8Array(h.length / 2);
    for (var i = 0; i < b.length; i++) { b[i] = parseInt(h.substr(i * 2, 2), 16); }
    return b;
  }
  function bytesToHex(b) {
    var s = "0x";
    for (var i = 0; i < b.length; i++) { s += (b[i] < 16 ? "0" : "") + b[i].toString(16); }
    return s;
  }
  function concat(parts) {
    var n = 0, i, o = 0;
    for (i = 0; i < parts.length; i++) { n += parts[i].length; }
    var out = new Uint8Array(n);
    for (i = 0; i < parts.length; i++) { out.set(parts[i], o); o += parts[i].length; }
    return out;
  }
  function keccak(bytes) { return hexToBytes(window.keccak256(bytes)); }
  function word(big) {
    var h = big.toString(16);
    if (h.length > 64) { throw new Error("value does not fit 32 bytes"); }
    return hexToBytes(h.padStart(64, "0"));
  }
  // abi.encode of static types only (the leaf encodings of this ledger): uintN, bytes32, bool, address.
  function encodeValues(types, values) {
    var words = types.map(function (t, i) {
      var v = values[i];
      if (/^uint\d*$/.test(t)) {
        var n = BigInt(v);
        var bits = parseInt(t.slice(4) || "256", 10);
        if (n < 0n || n >= (1n << BigInt(bits))) { throw new Error(t + " out of range"); }
        return word(n);
      }
      if (t === "bytes32") { var b = hexToBytes(v); if (b.length !== 32) { throw new Error("bytes32 length"); } return b; }
      if (t === "address") { return word(BigInt(v)); }
      if (t === "bool") { return word(v === true || v === "true" ? 1n : 0n); }
      throw new Error("unsupported leaf type " + t);
    });
    return concat(words);
  }
  function compare(a, b) {
    for (var i = 0; i < 32; i++) { if (a[i] !== b[i]) { return a[i] - b[i]; } }
    return 0;
  }
  function fold(leaf, proof) {
    return proof.reduce(function (node, sibling) {
      var s = hexToBytes(sibling);
      return compare(node, s) <= 0 ? keccak(concat([node, s])) : keccak(concat([s, node]));
    }, leaf);
  }
  function encodeVerifyValuesCall(root, proof, encoded) {
    var selector = hexToBytes(window.keccak256("verifyValues(bytes32,bytes32[],bytes)")).slice(0, 4);
    var head = [hexToBytes(root), word(96n), word(BigInt(128 + 32 * proof.length))];
    var proofPart = [word(BigInt(proof.length))].concat(proof.map(hexToBytes));
    var padded = new Uint8Array(Math.ceil(encoded.length / 32) * 32);
    padded.set(encoded);
    return bytesToHex(concat([selector].concat(head, proofPart, [word(BigInt(encoded.length)), padded])));
  }
  function rpc(url, method, params) {
    return fetch(url, { method: "POST", headers: { "Content-Type": "application/json" },
                        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: method, params: params }) })
      .then(function (r) { return r.json(); })
      .then(function (j) { if (j.error) { throw new Error(j.error.message || "JSON-RPC error"); } return j.result; });
  }
  function step(name, ok, detail) {
    var li = document.querySelector('[data-step="' + name + '"]');
    li.dataset.ok = ok ? "yes" : "no";
    li.querySelector(".mark").textContent = ok ? "✔" : "✘";
    li.querySelector(".detail").textContent = detail || "";
    return ok;
  }
  button.addEventListener("click", function () {
    button.disabled = true;
    out.dataset.verdict = "running";
    out.textContent = out.dataset.running;
    var ok = true;
    try {
      var encoded = encodeValues(doc.leaf_encoding, doc.value);
      var leaf = keccak(keccak(encoded));
      ok = step("leaf", bytesToHex(leaf) === doc.leaf_hash.toLowerCase(), bytesToHex(leaf)) && ok;
      var root = fold(leaf, doc.proof);
      ok = step("path", bytesToHex(root) === doc.root.toLowerCase(), bytesToHex(root)) && ok;
    } catch (e) {
      ok = step("leaf", false, String(e.message || e)) && false;
    }
    var url = rpcInput.value;
    var anchor = doc.anchor;
    var checks = anchor ? [
      rpc(url, "eth_call", [{ to: anchor.contract, data: encodeVerifyValuesCall(doc.root, doc.proof, encodeValues(doc.leaf_encoding, doc.value)) }, "latest"])
        .then(function (res) { return step("contract", BigInt(res) === 1n, anchor.contract + " verifyValues = " + (BigInt(res) === 1n)); }),
      rpc(url, "eth_getTransactionReceipt", [anchor.tx_hash])
        .then(function (rc) {
          var good = !!rc && rc.status === "0x1" && parseInt(rc.blockNumber, 16) === anchor.block_number
            && rc.to && rc.to.toLowerCase() === anchor.contract.toLowerCase();
          return step("tx", good, rc ? ("block " + parseInt(rc.blockNumber, 16) + ", status " + rc.status) : "no receipt");
        })
    ] : [Promise.resolve(step("contract", false, "not anchored yet"))];
    var names = ["contract", "tx"];
    Promise.all(checks.map(function (p, i) {
      return p.catch(function (e) { return step(names[i], false, String(e.message || e)); });
    })).then(function (results) {
      var all = ok && results.every(Boolean);
      out.dataset.verdict = all ? "verified" : "failed";
      out.textContent = all ? out.dataset.verified : out.dataset.failed;
      button.disabled = false;
    });
  });
})();
