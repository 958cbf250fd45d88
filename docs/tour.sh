#!/usr/bin/env bash
# The README's tour, as a script: run it against a fresh `make run` (`ledger up --demo`).
#
#   docs/tour.sh                      # API at $API (default http://127.0.0.1:8000), demo.json in $LEDGER_HOME
#
# bash + curl + python3 (to read JSON; no jq). Each step checks the HTTP status it expects and
# sets the ids the next steps use ($ID, $CYCLE, $RID) from the answers; it waits for the chain
# where the tour depends on it (the settlement recorded, the payment confirmed, the provenance
# event anchored). tests/api/test_tour.py runs it against a real `ledger up --demo`.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
export LEDGER_HOME="${LEDGER_HOME:-$ROOT/.ledger}"
API="${API:-http://127.0.0.1:${LEDGER_API_PORT:-8000}}"
LEDGER="${LEDGER:-$ROOT/.venv/bin/ledger}"
DEMO="$LEDGER_HOME/demo.json"
WAIT_S="${TOUR_WAIT_S:-60}"

say() { printf '\n== %s\n' "$*"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, {'d': d}))" "$1"; }
key() { python3 -c "import json,sys; print([m for m in json.load(open(sys.argv[1]))['members'] if m['id']==sys.argv[2]][0]['api_key'])" "$DEMO" "$1"; }

# call EXPECTED_STATUS METHOD PATH [curl args...]: the body on stdout; exits on another status.
call() {
  local expected="$1" method="$2" path="$3"; shift 3
  local out status
  out="$(mktemp)"
  status="$(curl -sS -o "$out" -w '%{http_code}' -X "$method" "$API$path" "$@")"
  if [[ " $expected " != *" $status "* ]]; then
    echo "tour: $method $path answered $status, expected $expected:" >&2
    cat "$out" >&2; echo >&2
    rm -f "$out"
    exit 1
  fi
  cat "$out"; rm -f "$out"
}

# until SECONDS COMMAND...: retry COMMAND (quietly) until it succeeds, or fail after SECONDS.
until_ok() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then echo "tour: timed out waiting for: $*" >&2; exit 1; fi
    sleep 0.5
  done
}

RETAILER=$(key retailer) SUPPLIER=$(key supplier) BUYER=$(key buyer) OPERATOR=$(key operator) AUDITOR=$(key auditor)
auth() { echo "Authorization: Bearer $1"; }

say "health and who am I"
call 200 GET /health | json 'd["status"], d["chain"]["chain_id"], d["chain"]["head_block"]'
call 200 GET /v1/me -H "$(auth "$RETAILER")" | json 'd["member"]["id"], d["effective_roles"]'

say "a cross-border settlement, HKD from the retailer to the supplier, paid in CNY"
ID=$(call "200 201" POST /v1/settlements -H "$(auth "$RETAILER")" -H "Idempotency-Key: tour-1" \
  -H "Content-Type: application/json" -d '{"client_reference":"INV-2026-0042","payee":"supplier",
  "source":{"value":100000,"currency":"HKD"},"target":{"value":91400,"currency":"CNY"},"fx_rate":"0.914",
  "purpose_code":"GDDS","payment_reference":"ORDER-88123"}' | json 'd["id"]')
echo "settlement $ID"
settlement_is() {  # settlement_is STATE: the settlement is in STATE and its chain operation confirmed
  call 200 GET "/v1/settlements/$ID" -H "$(auth "$RETAILER")" \
    | json 'd["state"] + " " + d["chain"]["status"]' | grep -qx "$1 confirmed"
}
until_ok "$WAIT_S" settlement_is instructed
call 200 GET "/v1/settlements/$ID" -H "$(auth "$RETAILER")" | json 'd["state"], d["chain"]["status"], d["chain"]["tx_hash"]'

say "the payment arrives through Alipay"
"$LEDGER" simulate-payment --provider alipay --settlement "$ID" --provider-txn-id 2026120422001488230000000001
until_ok "$WAIT_S" settlement_is paid
call 200 GET "/v1/settlements/$ID" -H "$(auth "$RETAILER")" | json 'd["state"], d["paid"]'

say "net and settle the cycle (operator)"
CYCLE=$(call "201" POST /v1/netting-cycles -H "$(auth "$OPERATOR")" -H "Idempotency-Key: tour-cycle" \
  -H "Content-Type: application/json" \
  -d '{"currency":"CNY"}' | json 'd["id"]')
echo "cycle $CYCLE"
cycle_confirmed() {  # the cycle is on chain before any payment into it is attested
  call 200 GET "/v1/netting-cycles/$CYCLE" -H "$(auth "$OPERATOR")" | json 'd["chain"]["status"]' | grep -qx confirmed
}
until_ok "$WAIT_S" cycle_confirmed
# Each net payer (a negative net) pays it into the cycle; the operator attests each payment once
# the provider's notification of that transfer is verified (one provider transaction, exactly the net).
N=0
for payer in $(call 200 GET "/v1/netting-cycles/$CYCLE" -H "$(auth "$OPERATOR")" \
    | json '" ".join(m["member_id"] + ":" + str(-m["net"]["value"]) for m in d["members"] if m["net"]["value"] < 0)'); do
  N=$((N + 1))
  echo "net payment in: ${payer%%:*} pays ${payer##*:} CNY minor units"
  call 202 POST "/v1/netting-cycles/$CYCLE/payments" -H "$(auth "$OPERATOR")" -H "Content-Type: application/json" \
    -d "{\"member\":\"${payer%%:*}\",\"provider\":\"alipay\",\"provider_transaction_id\":\"20261204220014882300000001$N\",
    \"amount\":{\"value\":${payer##*:},\"currency\":\"CNY\"}}" >/dev/null
done
net_payment_confirmed() {
  call 200 GET "/v1/netting-cycles/$CYCLE" -H "$(auth "$OPERATOR")" \
    | json 'all(p["status"] == "confirmed" for p in d["net_payments"])' | grep -qx True
}
until_ok "$WAIT_S" net_payment_confirmed
call "202" POST "/v1/netting-cycles/$CYCLE/settle" -H "$(auth "$OPERATOR")" | json 'd["state"]'
call 200 GET /v1/balances -H "$(auth "$RETAILER")" >/dev/null

say "a receivable, registered by the supplier and confirmed by the buyer"
RID=$(call "201" POST /v1/receivables -H "$(auth "$SUPPLIER")" -H "Idempotency-Key: tour-rcv" \
  -H "Content-Type: application/json" \
  -d '{"buyer_id":"buyer","invoice_number":"PRC-2026-118","face_value":{"value":50000000,"currency":"CNY"},
       "issue_date":"2026-11-20","due_date":"2027-02-18"}' | json 'd["id"]')
echo "receivable $RID"
receivable_registered() {
  call 200 GET "/v1/receivables/$RID" -H "$(auth "$SUPPLIER")" | json 'd["status"]' | grep -qvx "pending"
}
until_ok "$WAIT_S" receivable_registered
call "200 202" POST "/v1/receivables/$RID/confirm" -H "$(auth "$BUYER")" >/dev/null
receivable_confirmed() {
  call 200 GET "/v1/receivables/$RID" -H "$(auth "$SUPPLIER")" | json 'd["status"]' | grep -qx confirmed
}
until_ok "$WAIT_S" receivable_confirmed
call 200 GET "/v1/receivables/$RID" -H "$(auth "$SUPPLIER")" | json 'd["status"], len(d["parts"])'

say "provenance, and a proof an auditor checks without us"
call "200 201" POST /v1/provenance/events -H "$(auth "$SUPPLIER")" -H "Idempotency-Key: tour-evt" \
  -H "Content-Type: application/json" \
  -d '{"events":[{"event_id":"evt-0001","lot_id":"LOT-7731","product":"gtin:09506000134352","event_type":"produced",
       "location":"gln:0614141000005","occurred_at_s":1795300000}]}' >/dev/null
PROOF="$(mktemp -d)/proof.json"
"$LEDGER" anchors proof --event evt-0001 --wait "$WAIT_S" --api-key "$AUDITOR" --out "$PROOF"
"$LEDGER" anchors verify "$PROOF" --rpc "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['rpc'])" "$DEMO")"

say "reconcile the sample Alipay bill as the retailer (1 matched, 1 missing in the ledger: exit 3)"
set +e
"$LEDGER" reconcile "$ROOT/docs/samples/alipay-bill.csv" --provider alipay --member retailer
code=$?
set -e
if [[ $code -ne 3 ]]; then echo "tour: ledger reconcile exited $code, expected 3" >&2; exit 1; fi

say "tour done"
