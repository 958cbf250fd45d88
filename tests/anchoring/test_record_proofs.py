"""Journal records proven to auditors over the API, and the trial balance as of an anchored batch.

- A record's proof is "not anchored yet" (409 journal-record-pending, then a document whose
  anchor is null) until its batch is anchored; the CLI says so (exit 3) and ``--wait`` polls
  until it is; the anchored document verifies with ``ledger anchors verify`` and with tools we
  did not write (``cast`` and ``@openzeppelin/merkle-tree``: scripts/verify-record-with-cast.sh).
- ``POST /v1/anchors/flush`` closes the journal batch too.
- The trial balance lists every account (the consortium's FX clearing and fees too), debits equal
  credits per currency, as of a given anchored batch, for the auditor and operator roles only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

from anchors.cli import EXIT_NOT_ANCHORED, verify_proof_source

from ledger_api.cli import main as ledger_main
from settlement.domains.anchoring import digest_changed

from .conftest import AnchorApi
from .test_provenance_api import PROBLEM, _drive

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "verify-record-with-cast.sh"


def _settle(api: AnchorApi, ref: str, **money: object) -> str:
    _drive(api)  # the members' onboarding is on chain first
    body = {"client_reference": ref, "payee": "finance-d", "source": {"value": 100_000, "currency": "HKD"},
            "target": {"value": 91_400, "currency": "CNY"}, "fx_rate": "0.914", "purpose_code": "GDDS",
            "payment_reference": f"PAY-{ref}", "fees": {"value": 250, "currency": "HKD"}, **money}
    r = api.http.post("/v1/settlements", json=body, headers={**api.as_("buyer-b"), "Idempotency-Key": ref})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _cast() -> str:
    found = os.environ.get("LEDGER_CAST_BIN") or shutil.which("cast")
    if not found:
        found = next((str(p) for p in (ROOT / "node_modules" / "@foundry-rs").glob("cast-*/bin/cast")), None)
    assert found, "cast is not installed: `make test` installs @foundry-rs/cast (scripts/install-node-deps.sh)"
    return found


def test_record_proof_pending_then_anchored_verifies_with_ours_cast_and_openzeppelin(api: AnchorApi,
                                                                                   tmp_path: Path) -> None:
    sid = _settle(api, "REC-1")
    url = f"/v1/anchors/records/settlement/{sid}/proof"
    pending = api.http.get(url, headers=api.as_("auditor-c"))
    assert pending.status_code == 409 and pending.json()["type"] == PROBLEM + "journal-record-pending"
    saved = tmp_path / "pending.json"
    saved.write_text(pending.text)
    out: list[str] = []
    assert verify_proof_source(str(saved), api.rpc_url, out.append) == EXIT_NOT_ANCHORED
    assert out[-1].startswith("NOT ANCHORED YET")
    assert api.http.get(url, headers=api.as_("supplier-a")).status_code == 403
    assert api.http.get("/v1/anchors/records/settlement/0xnope/proof",
                        headers=api.as_("auditor-c")).status_code == 404

    flushed = [b for b in api.http.post("/v1/anchors/flush", headers=api.as_("ops")).json()["batches"]
               if b["kind"] == "journal"]
    assert len(flushed) == 1
    batched = api.http.get(url, headers=api.as_("auditor-c")).json()
    assert batched["anchor"] is None and batched["record"]["record_id"] == sid
    (tmp_path / "batched.json").write_text(json.dumps(batched))
    out = []
    assert verify_proof_source(str(tmp_path / "batched.json"), api.rpc_url, out.append) == EXIT_NOT_ANCHORED

    # --wait: the CLI polls while the workers anchor the batch
    done = threading.Event()

    def workers() -> None:
        time.sleep(1.0)
        _drive(api)
        done.set()

    threading.Thread(target=workers, daemon=True).start()
    proof = tmp_path / "proof.json"
    code = ledger_main(["anchors", "proof", "--record", f"settlement/{sid}", "--api", api.url, "--api-key",
                        api.keys["auditor-c"], "--wait", "30", "--out", str(proof)])
    assert code == 0 and done.wait(30)
    doc = json.loads(proof.read_text())
    assert doc["anchor"]["batch_sequence"] == flushed[0]["sequence"] and doc["schema_version"] == 0x8002
    record = json.loads(doc["record"]["canonical_json"])
    assert record["target_amount_minor"] == "91400" and record["state"] == "instructed"

    out = []
    assert verify_proof_source(str(proof), api.rpc_url, out.append) == 0, "\n".join(out)
    assert any("record-to-value" in line and "[ok]" in line for line in out)
    # the journal leaf is checked on chain from its values, typed: TraceAnchor.verifyJournalValues
    assert any(line.strip().startswith("[ok] contract-verify-values: TraceAnchor.verifyJournalValues") for line in out), out
    assert ledger_main(["anchors", "verify", f"{api.url}{url}", "--api-key", api.keys["auditor-c"],
                        "--rpc", api.rpc_url]) == 0
    run = subprocess.run(["bash", str(SCRIPT), str(proof), api.rpc_url], capture_output=True, text=True,
                         env={**os.environ, "CAST": _cast()}, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "VERIFIED" in run.stdout and "StandardMerkleTree.verify(root, leafEncoding, value, proof) = true" in run.stdout
    # a document whose record text was changed no longer verifies, with ours or with cast
    forged = dict(doc, record={**doc["record"], "canonical_json": doc["record"]["canonical_json"].replace(
        '"91400"', '"91500"')})
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    out = []
    assert verify_proof_source(str(tmp_path / "forged.json"), api.rpc_url, out.append) == 1
    run = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "forged.json"), api.rpc_url], capture_output=True,
                         text=True, env={**os.environ, "CAST": _cast()}, timeout=120, cwd=ROOT)
    assert run.returncode == 1 and "FAIL" in run.stdout


def test_the_trial_balance_lists_every_account_balanced_as_of_an_anchored_batch(api: AnchorApi) -> None:
    assert api.http.get("/v1/anchors/trial-balance", headers=api.as_("auditor-c")).json()["type"] == \
        PROBLEM + "no-anchored-journal-batch"
    _settle(api, "TB-1")
    api.http.post("/v1/anchors/flush", headers=api.as_("ops"))
    _drive(api)
    first = api.http.get("/v1/anchors/trial-balance", headers=api.as_("auditor-c")).json()
    _settle(api, "TB-2")
    api.http.post("/v1/anchors/flush", headers=api.as_("ops"))
    _drive(api)
    for member in ("supplier-a", "buyer-b", "finance-d"):
        assert api.http.get("/v1/anchors/trial-balance", headers=api.as_(member)).status_code == 403
    latest = api.http.get("/v1/anchors/trial-balance", headers=api.as_("ops")).json()
    assert latest["balanced"] and latest["postings"] == 2 and latest["as_of"]["sequence"] > first["as_of"]["sequence"]
    as_of_first = api.http.get("/v1/anchors/trial-balance", params={"as_of": first["as_of"]["sequence"]},
                               headers=api.as_("auditor-c")).json()
    assert as_of_first == first and first["postings"] == 1
    accounts = {(a["owner"], a["account"], a["currency"]): a for a in latest["accounts"]}
    fx_cny = accounts[("@consortium", "fx_clearing", "CNY")]
    assert fx_cny["credits"] == {"value": 2 * 91_400, "currency": "CNY"}
    assert accounts[("@consortium", "fees_receivable", "HKD")]["debits"]["value"] == 2 * 250
    assert {c["currency"]: c["balanced"] for c in latest["currencies"]} == {"CNY": True, "HKD": True}
    hkd = next(c for c in latest["currencies"] if c["currency"] == "HKD")
    assert hkd["debits"] == hkd["credits"] == {"value": 2 * (100_000 + 250), "currency": "HKD"}
    # the CLI reads the store itself (read-only)
    rt = api.runtime
    assert ledger_main(["anchors", "trial-balance", "--database-url", rt.db.url]) == 0
    # a record kind's change recorded through the journal is what later audits compare with
    with rt.db.transaction() as s:
        digest_changed(s, "member", "buyer-b")  # unchanged: no new version
