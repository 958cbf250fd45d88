"""The consortium's own accounts (``@consortium``: FX clearing, fees) are readable over the API by
the operator and auditors, and by no one else, and they are the ones the anchored trial balance
sums: over real HTTP (uvicorn), a real anvil, SQLite and PostgreSQL.

On ``main`` before this change ``GET /v1/balances?member=@consortium`` answered 422 to everyone
(the member parameter's pattern refused ``@``) and auditors got 403 on ``/v1/balances`` at all, so
no one outside the operator could check the whole book balances from the live accounts.
"""

from __future__ import annotations

from .conftest import AnchorApi
from .test_provenance_api import PROBLEM, _drive
from .test_record_proofs import _settle

CONSORTIUM = "@consortium"


def _accounts(answer: dict) -> dict[tuple[str, str], dict]:
    return {(b["account"], b["debit"]["currency"]): b for b in answer["data"]}


def test_operator_and_auditor_read_the_consortium_accounts_others_get_403(api: AnchorApi) -> None:
    _settle(api, "CONS-1")  # 100,000 HKD -> 91,400 CNY, fees 250 HKD
    _settle(api, "CONS-2")
    _drive(api)
    answers = {}
    for reader in ("ops", "auditor-c"):
        r = api.http.get("/v1/balances", params={"member": CONSORTIUM}, headers=api.as_(reader))
        assert r.status_code == 200, r.text
        assert r.json()["member_id"] == CONSORTIUM
        answers[reader] = r.json()
    assert answers["ops"] == answers["auditor-c"]
    accounts = _accounts(answers["ops"])
    assert set(accounts) == {("fx_clearing", "HKD"), ("fx_clearing", "CNY"), ("fees_receivable", "HKD")}
    assert accounts[("fx_clearing", "HKD")]["debit"] == {"value": 2 * 100_000, "currency": "HKD"}
    assert accounts[("fx_clearing", "CNY")]["credit"] == {"value": 2 * 91_400, "currency": "CNY"}
    assert accounts[("fees_receivable", "HKD")]["balance"] == {"value": 2 * 250, "currency": "HKD"}
    only_cny = api.http.get("/v1/balances", params={"member": CONSORTIUM, "currency": "CNY"},
                            headers=api.as_("auditor-c")).json()
    assert [(b["account"], b["balance"]["value"]) for b in only_cny["data"]] == [("fx_clearing", -2 * 91_400)]

    # The statement of account of the consortium's FX clearing, in posting order.
    st = api.http.get("/v1/statements", params={"member": CONSORTIUM, "currency": "CNY"},
                      headers=api.as_("auditor-c"))
    assert st.status_code == 200, st.text
    assert [(ln["account"], ln["side"], ln["amount"]["value"]) for ln in st.json()["data"]] == \
        [("fx_clearing", "C", 91_400)] * 2

    # Finance members (a party to the settlements included) and other roles: 403 problem+json.
    for member in ("buyer-b", "finance-d", "supplier-a"):
        for path, params in (("/v1/balances", {"member": CONSORTIUM}),
                             ("/v1/statements", {"member": CONSORTIUM, "currency": "CNY"})):
            r = api.http.get(path, params=params, headers=api.as_(member))
            assert r.status_code == 403, (member, path, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["type"] == PROBLEM + "forbidden"
    # A finance member still reads its own, and not another member's.
    own = api.http.get("/v1/balances", headers=api.as_("buyer-b"))
    assert own.status_code == 200 and own.json()["member_id"] == "buyer-b" and own.json()["data"]
    assert api.http.get("/v1/balances", params={"member": "finance-d"},
                        headers=api.as_("buyer-b")).status_code == 403
    # The auditor reads any member's accounts too (read only, as in the trial balance).
    payee = api.http.get("/v1/balances", params={"member": "finance-d"}, headers=api.as_("auditor-c"))
    assert payee.status_code == 200 and _accounts(payee.json())[("instructed_receivable", "CNY")]["debit"][
        "value"] == 2 * 91_400
    # An owner that is neither a member id nor @consortium is refused by the schema.
    assert api.http.get("/v1/balances", params={"member": "@fees"}, headers=api.as_("ops")).status_code == 422


def test_the_trial_balance_includes_the_consortium_accounts_as_the_live_balances_show_them(api: AnchorApi) -> None:
    """Once every posting is anchored, the trial balance's rows of every owner, the consortium's
    included, are exactly the live balances, and debits equal credits per currency over them."""
    _settle(api, "CONS-TB-1")
    _settle(api, "CONS-TB-2", fees={"value": 0, "currency": "HKD"})
    api.http.post("/v1/anchors/flush", headers=api.as_("ops"))
    _drive(api)
    tb = api.http.get("/v1/anchors/trial-balance", headers=api.as_("auditor-c"))
    assert tb.status_code == 200, tb.text
    trial = tb.json()
    assert trial["balanced"] and trial["postings"] == 2
    owners = {a["owner"] for a in trial["accounts"]}
    assert owners == {CONSORTIUM, "buyer-b", "finance-d"}
    for owner in owners:
        live = api.http.get("/v1/balances", params={"member": owner}, headers=api.as_("auditor-c")).json()
        from_live = {(b["account"], b["debit"]["currency"]): (b["debit"]["value"], b["credit"]["value"])
                     for b in live["data"]}
        anchored = {(a["account"], a["currency"]): (a["debits"]["value"], a["credits"]["value"])
                    for a in trial["accounts"] if a["owner"] == owner}
        assert from_live == anchored, owner
    consortium = {(a["account"], a["currency"]): a for a in trial["accounts"] if a["owner"] == CONSORTIUM}
    assert consortium[("fees_receivable", "HKD")]["debits"]["value"] == 250
    assert consortium[("fx_clearing", "HKD")]["balance"]["value"] == 2 * 100_000
    # Debits equal credits per currency across every owner, as summed by the caller itself.
    for currency in ("HKD", "CNY"):
        rows = [a for a in trial["accounts"] if a["currency"] == currency]
        assert sum(a["debits"]["value"] for a in rows) == sum(a["credits"]["value"] for a in rows) > 0
    # The trial balance is for the operator and auditors only.
    assert api.http.get("/v1/anchors/trial-balance", headers=api.as_("ops")).status_code == 200
    for member in ("buyer-b", "finance-d", "supplier-a"):
        r = api.http.get("/v1/anchors/trial-balance", headers=api.as_(member))
        assert r.status_code == 403 and r.json()["type"] == PROBLEM + "forbidden"
