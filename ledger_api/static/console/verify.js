// Verify a ledger-anchor-proof-v1 document in the browser, trusting neither the console nor the
// operator: (1) the leaf is keccak256(keccak256(abi.encode(values))) of the values shown, computed
// by OpenZeppelin's own code (@openzeppelin/merkle-tree's standardLeafHash), (2) the path folds from
// that leaf to the root (its processProof) and StandardMerkleTree.verify(root, encoding, values,
// proof) holds, (3) the chain's TraceAnchor contract answers verifyValues(root, proof,
// abi.encode(values)) = true by eth_call (root anchored and proof valid, checked by the contract
// itself), and (4) the anchoring transaction's receipt is in the chain, successful, in the block the
// document names. The library is the vendored browser build merkle-tree.min.js (window.OZMerkle,
// scripts/build-console-merkle.sh); JSON-RPC: fetch to the node's URL shown (editable).
(function () {
  "use strict";
  var OZ = window.OZMerkle;
  var doc = JSON.parse(document.getElementById("proof-doc").textContent);
  var button = document.getElementById("verify");
  var rpcInput = document.getElementById("rpc-url");
  var out = document.getElementById("verify-result");

  function bytesToHex(b) {
    var s = "0x";
    for (var i = 0; i < b.length; i++) { s += (b[i] < 16 ? "0" : "") + b[i].toString(16); }
    return s;
  }
  // The document's values as the ABI encoder takes them: integers as BigInt (never a JS number).
  function leafValues(types, values) {
    return types.map(function (t, i) {
      var v = values[i];
      if (/^u?int\d*$/.test(t)) { return BigInt(v); }
      if (t === "bool") { return v === true || v === "true"; }
      return v;
    });
  }
  function encodeVerifyValuesCall(root, proof, encoded) {
    var selector = OZ.keccak256(new TextEncoder().encode("verifyValues(bytes32,bytes32[],bytes)")).slice(2, 10);
    var data = OZ.encode(["bytes32", "bytes32[]", "bytes"], [root, proof, encoded]);
    return "0x" + selector + bytesToHex(data).slice(2);
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
    var values = null;
    try {
      values = leafValues(doc.leaf_encoding, doc.value);
      var leaf = OZ.standardLeafHash(doc.leaf_encoding, values);
      ok = step("leaf", leaf === doc.leaf_hash.toLowerCase(), leaf) && ok;
      var root = OZ.processProof(leaf, doc.proof);
      var verified = OZ.StandardMerkleTree.verify(doc.root, doc.leaf_encoding, values, doc.proof);
      ok = step("path", root === doc.root.toLowerCase() && verified,
                root + " · StandardMerkleTree.verify = " + verified) && ok;
    } catch (e) {
      ok = step("leaf", false, String(e.message || e)) && false;
    }
    var url = rpcInput.value;
    var anchor = doc.anchor;
    var checks = anchor ? [
      Promise.resolve().then(function () {
        var data = encodeVerifyValuesCall(doc.root, doc.proof, OZ.encode(doc.leaf_encoding, values || []));
        return rpc(url, "eth_call", [{ to: anchor.contract, data: data }, "latest"]);
      }).then(function (res) { return step("contract", BigInt(res) === 1n, anchor.contract + " verifyValues = " + (BigInt(res) === 1n)); }),
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
