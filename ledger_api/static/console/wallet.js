// Sign the EIP-712 typed data shown on the page with a browser wallet (EIP-1193), when one is
// present: eth_requestAccounts, then eth_signTypedData_v4 with the exact JSON the service built.
// The signature lands in the form's field; the member reviews it and submits. No wallet: the
// button stays hidden and a signature from `ledger sign` is pasted instead.
(function () {
  "use strict";
  var provider = window.ethereum;
  var data = document.getElementById("typed-data");
  var button = document.getElementById("wallet-sign");
  if (!provider || !data || !button) { return; }
  button.parentElement.hidden = false;
  var status = document.getElementById("wallet-status");
  button.addEventListener("click", function () {
    var typed = JSON.parse(data.textContent);
    delete typed.summary;
    status.textContent = "…";
    provider.request({ method: "eth_requestAccounts" }).then(function (accounts) {
      var account = accounts[0];
      return provider.request({ method: "eth_signTypedData_v4", params: [account, JSON.stringify(typed)] })
        .then(function (signature) {
          document.getElementById("f-signature").value = signature;
          var signer = document.getElementById("f-signer");
          if (signer && !signer.value) { signer.value = account; }
          status.textContent = account;
        });
    }).catch(function (err) {
      status.textContent = (err && err.message) ? err.message : String(err);
    });
  });
})();
