"""A test EIP-1193 wallet for the console's browser tests: ``window.ethereum`` whose
``eth_signTypedData_v4`` signs in Python with a key only the test holds (what MetaMask would do
with the member's own key), and the API's key-change flow that gives a member such a key."""

from __future__ import annotations

import json

from eth_account import Account
from eth_account.signers.local import LocalAccount

from tests.console.conftest import api, wait_until

WALLET = """
window.ethereum = {
  isTestWallet: true,
  request: async ({ method, params }) => {
    if (method === "eth_requestAccounts") { return [window.__walletAccount]; }
    if (method === "eth_signTypedData_v4") { return await window.testWalletSign(params[0], params[1]); }
    throw new Error("unsupported " + method);
  },
};
"""


def hex_signature(key: LocalAccount, typed: dict) -> str:
    signature = key.sign_typed_data(full_message=typed).signature.hex()
    return signature if signature.startswith("0x") else "0x" + signature


def give_wallet(page, key: LocalAccount) -> list[dict]:  # type: ignore[no-untyped-def]
    """The page's browser context gets a test wallet holding ``key``; returns the list of the typed
    data it signed (checked against the wallet's account on each request)."""
    signed: list[dict] = []

    def sign(account: str, typed_json: str) -> str:
        assert account.lower() == key.address.lower()
        typed = json.loads(typed_json)
        signed.append(typed)
        return hex_signature(key, typed)

    page.context.expose_function("testWalletSign", sign)
    page.context.add_init_script(f"window.__walletAccount = {json.dumps(key.address)};" + WALLET)
    return signed


def add_own_key(demo, member_id: str) -> LocalAccount:  # type: ignore[no-untyped-def]
    """Give ``member_id`` an account of its own: the new key's proof of possession and the member's
    custodial consent, relayed by the API; returns once the follower shows the key."""
    key = Account.create()
    with api(demo, member_id) as http:
        typed = http.post(f"/v1/members/{member_id}/keys/typed-data", json={"action": "add", "account": key.address})
        assert typed.status_code == 200, typed.text
        t = typed.json()
        added = http.post(f"/v1/members/{member_id}/keys", json={
            "account": key.address, "signer": t["signer"], "nonce": t["nonce"], "deadline": t["deadline"],
            "possession_signature": hex_signature(key, t["typed_data"]), "custodial_consent": True})
        assert added.status_code == 202, added.text
        wait_until(lambda: any(k["address"].lower() == key.address.lower() and not k["custodial"]
                               for k in http.get(f"/v1/members/{member_id}/keys").json()["data"]), "own key")
    return key
