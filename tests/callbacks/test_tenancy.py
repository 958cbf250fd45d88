"""Each member sees only its own reconciliation data and provider accounts (issue 15, first bullet).

Over real HTTP against the app, a real anvil and real stores: statements, runs, reports and
exceptions belong to the member that uploaded or ran them; a run reconciles only its owner's
ledger entries (settlements it is party to, and those paid through callbacks on its own provider
accounts); callback exceptions belong to the provider account's owner; the operator and auditors
read across (docs/api.md, Tenancy) and act on nothing of another member's.

Each leak the issue quotes is one test here, and each fails on the main before tenancy: the
``payments`` member listing, running, downloading and resolving the retailer's
(``test_a_member_cannot_list_run_download_or_resolve_another_members_reconciliation``), the
``bank`` member's run getting every member's ledger entries
(``test_a_run_reconciles_only_its_owners_ledger_entries``), two members reconciling the same file
sharing one set of exception items (``test_the_same_file_gives_each_member_its_own_items``), and
callback exceptions readable by any finance member
(``test_callback_exceptions_belong_to_the_accounts_owner``).
"""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
import pytest

from settlement.core.money import Money
from settlement.domains.payments import accounts
from tests.api.support import onboard_direct

from .conftest import PROVIDERS, CWorld

USD = "USD"
HEADER = "provider_txn_id,reference,kind,amount_minor,currency,status,booked_at\n"
NEW_MEMBERS = {"supplier": ["supplier", "finance"], "payments": ["finance"]}


def _consortium(cw: CWorld) -> None:
    """The demo's shape: a supplier and a payment institution join; the provider accounts are the
    payment institution's."""
    for member, roles in NEW_MEMBERS.items():
        cw.w.keys[member] = onboard_direct(cw.w.runtime, member, roles)
    cw.w.sync()
    for provider in PROVIDERS:
        with cw.w.runtime.db.transaction() as session:
            accounts.update_account(cw.w.runtime, session, provider, cw.creds[provider]["account"],
                                    cw.creds[provider], owner="payments")


@pytest.fixture
def tw(sworld: CWorld) -> CWorld:
    _consortium(sworld)
    return sworld


@pytest.fixture
def tw_both(cworld: CWorld) -> CWorld:
    """On SQLite and PostgreSQL (the scoping is SQL)."""
    _consortium(cworld)
    return cworld


def _pay(cw: CWorld, payer: str, payee: str, n: int) -> list[dict]:
    """``n`` settlements from ``payer`` to ``payee``, paid through Stripe callbacks on the payment
    institution's account and confirmed on chain."""
    paid = []
    for _ in range(n):
        s = cw.w.create(payer=payer, payee=payee)
        cw.w.sync()
        pi = f"pi_{s['payment_reference'].lower().replace('-', '')}"
        note = cw.payment("stripe", s["payment_reference"], Money(s["target"]["value"], USD), payment_intent_id=pi)
        assert cw.post("stripe", note).status_code == 200
        paid.append({**s, "pi": pi})
    cw.w.sync()
    return paid


def _statement(paid: list[dict], extra: str = "") -> bytes:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    rows = [f"{s['pi']},{s['payment_reference']},payment,{s['target']['value']},USD,succeeded,{now}\n" for s in paid]
    return (HEADER + "".join(rows) + extra).encode()


def _upload(cw: CWorld, who: str, body: bytes) -> dict:
    r = cw.w.http.post("/v1/reconciliation/statements", params={"kind": "normalized", "filename": "s.csv"},
                       content=body, headers={**cw.w.h(who), "Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    return r.json()


def _run(cw: CWorld, who: str, statement_id: str) -> dict:
    r = cw.w.http.post("/v1/reconciliation/runs", json={"statement_id": statement_id}, headers=cw.w.h(who))
    assert r.status_code == 201, r.text
    return r.json()


def _get(cw: CWorld, who: str, path: str, **params: object) -> httpx.Response:
    return cw.w.http.get(f"/v1/reconciliation{path}", params=params, headers=cw.w.h(who))


def test_a_member_cannot_list_run_download_or_resolve_another_members_reconciliation(tw: CWorld) -> None:
    """The `payments` member, party to none of the retailer's settlements, neither lists the
    retailer's statement, nor runs it, nor downloads its report, nor resolves its exception; each
    of its attempts looks like a missing id. Auditor and operator read it; neither resolves it."""
    paid = _pay(tw, "retailer", "supplier", 2)
    stranger = f"pi_stranger,ORDER-PRIVATE-REF,payment,777,USD,succeeded,{datetime.now(timezone.utc).date()}\n"
    stmt = _upload(tw, "retailer", _statement(paid, stranger))
    run = _run(tw, "retailer", stmt["id"])
    report = _get(tw, "retailer", f"/runs/{run['id']}/report").json()
    (item,) = report["exceptions"]
    assert item["reference"] == "ORDER-PRIVATE-REF"

    # payments: lists nothing of the retailer's, and may not ask for it by owner
    assert _get(tw, "payments", "/statements").json()["data"] == []
    assert _get(tw, "payments", "/runs").json()["data"] == []
    assert _get(tw, "payments", "/exceptions").json()["data"] == []
    for path in ("/statements", "/runs", "/exceptions"):
        denied = _get(tw, "payments", path, owner="retailer")
        assert denied.status_code == 403 and denied.headers["content-type"].startswith("application/problem+json")
    # ... cannot run the retailer's statement, read its run, download its report in any format
    r = tw.w.http.post("/v1/reconciliation/runs", json={"statement_id": stmt["id"]}, headers=tw.w.h("payments"))
    assert r.status_code == 404 and r.json()["type"] == "urn:ledger:problem:statement-not-found", r.text
    assert _get(tw, "payments", f"/runs/{run['id']}").status_code == 404
    for fmt in ("json", "csv", "text"):
        got = _get(tw, "payments", f"/runs/{run['id']}/report", format=fmt)
        assert got.status_code == 404 and "ORDER-PRIVATE-REF" not in got.text and paid[0]["pi"] not in got.text
    # ... cannot read or resolve its exception, which stays open for the retailer
    assert _get(tw, "payments", f"/exceptions/{item['exception_id']}").status_code == 404
    resolve = tw.w.http.post(f"/v1/reconciliation/exceptions/{item['exception_id']}/resolve",
                             json={"action": "written_off", "note": "not mine"}, headers=tw.w.h("payments"))
    assert resolve.status_code == 404, resolve.text
    assert _get(tw, "retailer", f"/exceptions/{item['exception_id']}").json()["state"] == "open"

    # the auditor and the operator read across (and may narrow to one owner) ...
    for reader in ("auditor", "operator"):
        assert [s["id"] for s in _get(tw, reader, "/statements").json()["data"]] == [stmt["id"]]
        assert [r["id"] for r in _get(tw, reader, "/runs", owner="retailer").json()["data"]] == [run["id"]]
        assert _get(tw, reader, "/runs", owner="payments").json()["data"] == []
        assert _get(tw, reader, f"/runs/{run['id']}/report", format="csv").status_code == 200
        assert _get(tw, reader, f"/exceptions/{item['exception_id']}").status_code == 200
    # ... but act on nothing of the retailer's
    assert tw.w.http.post("/v1/reconciliation/runs", json={"statement_id": stmt["id"]},
                          headers=tw.w.h("operator")).status_code == 404
    assert tw.w.http.post(f"/v1/reconciliation/exceptions/{item['exception_id']}/resolve",
                          json={"action": "accepted", "note": "operator"}, headers=tw.w.h("operator")).status_code == 404
    assert tw.w.http.post(f"/v1/reconciliation/exceptions/{item['exception_id']}/resolve",
                          json={"action": "accepted", "note": "auditor"}, headers=tw.w.h("auditor")).status_code == 403
    # the retailer resolves its own
    done = tw.w.http.post(f"/v1/reconciliation/exceptions/{item['exception_id']}/resolve",
                          json={"action": "provider_claimed", "note": "ours"}, headers=tw.w.h("retailer"))
    assert done.status_code == 200 and done.json()["resolution"]["resolved_by"] == "retailer"
    assert stmt["owner"] == run["owner"] == done.json()["owner"] == "retailer"


def test_a_run_reconciles_only_its_owners_ledger_entries(tw_both: CWorld) -> None:
    """A run's ledger side is its owner's own entries: settlements it is party to, and those paid
    through callbacks on its own provider accounts. The bank, party to one settlement, gets that
    one; a finance member party to none and owning no account gets none (on the main, every run
    got every member's entries)."""
    tw = tw_both
    tw.w.keys["newcomer"] = onboard_direct(tw.w.runtime, "newcomer", ["finance"])
    tw.w.sync()
    to_supplier = _pay(tw, "retailer", "supplier", 3)
    to_bank = _pay(tw, "retailer", "bank", 1)
    expected = {"bank": to_bank, "supplier": to_supplier, "retailer": to_supplier + to_bank,
                "payments": to_supplier + to_bank, "newcomer": []}
    body = _statement(to_supplier + to_bank)  # every member uploads the very same file
    for member, own in expected.items():
        run = _run(tw, member, _upload(tw, member, body)["id"])
        assert run["ledger_entries"] == len(own), (member, run["ledger_entries"])
        assert run["summary"]["buckets"]["matched"]["items"] == len(own)
        report = _get(tw, member, f"/runs/{run['id']}/report").json()
        mine = {f"pay:{s['id']}" for s in own}
        assert all(e["ledger_entry_id"] in mine for e in report["exceptions"] if e["ledger_entry_id"])
        # what is not its own is, from its side, a statement line with no ledger entry
        assert report["buckets"]["missing_in_ledger"]["items"] == 4 - len(own)
        assert report["buckets"]["missing_in_statement"]["items"] == 0


def test_the_same_file_gives_each_member_its_own_items(tw: CWorld) -> None:
    """Exception ids are per owner, never derived from content shared across members: the
    retailer and the supplier reconciling the same bytes each get their own items (new, not
    "seen before"), and a resolution by one leaves the other's open. A re-run by the same member
    still adds nothing."""
    paid = _pay(tw, "retailer", "supplier", 1)
    body = _statement(paid, "pi_x,ORDER-X,payment,5,USD,succeeded,2026-01-01T00:00:00\n")
    runs = {m: _run(tw, m, _upload(tw, m, body)["id"]) for m in ("retailer", "supplier")}
    for run in runs.values():
        assert run["summary"]["exceptions"]["new"] == 1 and run["summary"]["exceptions"]["seen_before"] == 0
    items = {m: _get(tw, m, "/exceptions").json()["data"] for m in runs}
    assert len(items["retailer"]) == len(items["supplier"]) == 1
    ours, theirs = items["retailer"][0]["exception_id"], items["supplier"][0]["exception_id"]
    assert ours != theirs
    assert tw.w.http.post(f"/v1/reconciliation/exceptions/{ours}/resolve", json={"action": "accepted", "note": "ok"},
                          headers=tw.w.h("retailer")).status_code == 200
    assert _get(tw, "supplier", f"/exceptions/{theirs}").json()["state"] == "open"
    again = _run(tw, "supplier", _upload(tw, "supplier", body)["id"])
    assert again["summary"]["exceptions"]["new"] == 0 and again["summary"]["exceptions"]["seen_before"] == 1


def test_callback_exceptions_belong_to_the_accounts_owner(tw: CWorld) -> None:
    """A callback the ledger could not apply is an item of the owner of the account it arrived
    on (the payment institution here), even when it names the retailer's settlement; the
    retailer does not see it, the operator and the auditor do."""
    s = tw.settlement()  # retailer -> bank
    assert tw.post("stripe", tw.payment("stripe", s["payment_reference"], Money(99_999, USD))).status_code == 200
    assert tw.post("alipay", tw.payment("alipay", "NO-SUCH-ORDER", Money(1, USD))).text == "success"
    items = _get(tw, "payments", "/exceptions", origin="callback").json()["data"]
    assert sorted(i["reason"] for i in items) == ["amount_mismatch", "unknown_reference"]
    for outsider in ("retailer", "bank"):
        assert _get(tw, outsider, "/exceptions", origin="callback").json()["data"] == []
        assert _get(tw, outsider, f"/exceptions/{items[0]['exception_id']}").status_code == 404
    assert {i["owner"] for i in items} == {"payments"}
    for reader in ("operator", "auditor"):
        assert len(_get(tw, reader, "/exceptions", origin="callback").json()["data"]) == 2
    # the recorded callbacks themselves: the owner reads those on its accounts, others none
    assert len(tw.w.http.get("/v1/callbacks", headers=tw.w.h("payments")).json()["data"]) == 2
    assert tw.w.http.get("/v1/callbacks", headers=tw.w.h("retailer")).json()["data"] == []
    cb_id = tw.w.http.get("/v1/callbacks", headers=tw.w.h("auditor")).json()["data"][0]["id"]
    assert tw.w.http.get(f"/v1/callbacks/{cb_id}", headers=tw.w.h("retailer")).status_code == 404
    assert tw.w.http.get(f"/v1/callbacks/{cb_id}", headers=tw.w.h("payments")).status_code == 200


def test_provider_accounts_belong_to_a_member(tw: CWorld) -> None:
    """The operator creates an account for a member and may give it to another; the owner reads
    its own accounts, other members see none of them; an owner must be a member."""
    from settlement.providers.testing import demo_credentials

    creds = demo_credentials("stripe", "stripe-supplier")
    config = {"webhook_secrets": [creds["webhook_secret"]]}
    op = tw.w.h("operator")
    made = tw.w.http.post("/v1/provider-accounts", headers=op,
                          json={"provider": "stripe", "account": "stripe-supplier", "config": config,
                                "owner": "supplier"})
    assert made.status_code == 201 and made.json()["owner"] == "supplier", made.text
    assert made.headers["Location"] == "/v1/provider-accounts/stripe/stripe-supplier"
    assert tw.w.http.get(made.headers["Location"], headers=tw.w.h("supplier")).json()["owner"] == "supplier"
    supplier = tw.w.http.get("/v1/provider-accounts", headers=tw.w.h("supplier")).json()["data"]
    assert [a["account"] for a in supplier] == ["stripe-supplier"]
    mine = tw.w.http.get("/v1/provider-accounts", headers=tw.w.h("payments")).json()["data"]
    assert sorted(a["account"] for a in mine) == sorted(tw.creds[p]["account"] for p in PROVIDERS)
    assert tw.w.http.get("/v1/provider-accounts", headers=tw.w.h("retailer")).json()["data"] == []
    assert tw.w.http.get("/v1/provider-accounts", params={"owner": "supplier"},
                         headers=tw.w.h("retailer")).status_code == 403
    assert tw.w.http.get("/v1/provider-accounts/stripe/stripe-supplier", headers=tw.w.h("retailer")).status_code == 404
    assert len(tw.w.http.get("/v1/provider-accounts", headers=op).json()["data"]) == 4
    moved = tw.w.http.put("/v1/provider-accounts/stripe/stripe-supplier", headers=op,
                          json={"config": config, "owner": "retailer"})
    assert moved.status_code == 200 and moved.json()["owner"] == "retailer"
    assert tw.w.http.get("/v1/provider-accounts/stripe/stripe-supplier", headers=tw.w.h("retailer")).status_code == 200
    assert tw.w.http.put("/v1/provider-accounts/stripe/stripe-supplier", headers=tw.w.h("retailer"),
                         json={"config": config}).status_code == 403  # owners read; the operator administers
    nobody = tw.w.http.post("/v1/provider-accounts", headers=op,
                            json={"provider": "stripe", "account": "stripe-x", "config": config, "owner": "nobody"})
    assert nobody.status_code == 404 and nobody.json()["type"] == "urn:ledger:problem:unknown-member"
