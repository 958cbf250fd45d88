#!/usr/bin/env bash
# Verify a journal record's proof document with tools the ledger's authors did not write:
# foundry's `cast` (keccak256, ABI encoding, chain calls), `node` with @openzeppelin/merkle-tree,
# and any node of the chain. Nothing of the ledger's own code runs. docs/anchors.md walks
# through each step.
#
#   scripts/verify-record-with-cast.sh PROOF.json RPC_URL
#
# PROOF.json: `ledger anchors proof --record KIND/ID --out PROOF.json` (or
# GET /v1/anchors/records/{kind}/{id}/proof). CAST: the cast binary (default: `cast` on PATH, else
# the one npm installs under node_modules/@foundry-rs). Exit 0 only if every step holds.
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 PROOF.json RPC_URL" >&2
  exit 2
fi
proof=$(realpath "$1")
rpc=$2
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${CAST:-}" ]; then
  CAST=$(command -v cast || ls "$here"/node_modules/@foundry-rs/cast-*/bin/cast 2>/dev/null | head -1 || true)
fi
[ -x "${CAST:-}" ] || { echo "cast not found: npm install @foundry-rs/cast, or set CAST" >&2; exit 2; }

# One field of the document (JSON arrays as space-separated words).
field() {
  node -e 'const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
           const v = process.argv[2].split(".").reduce((o, k) => o[k], d);
           console.log(Array.isArray(v) ? v.join(" ") : v)' "$proof" "$1"
}
utf8_keccak() { "$CAST" keccak "$("$CAST" from-utf8 "$1")"; }
fail() { echo "FAIL: $*"; exit 1; }

text=$(field record.canonical_json)
kind=$(field record.kind)
id=$(field record.record_id)
version=$(field record.version)
recorded_at=$(field record.recorded_at_s)
prev=$(field record.prev_digest)
schema=$(field schema_version)
root=$(field root)
contract=$(field anchor.contract)
tx=$(field anchor.tx_hash)
block=$(field anchor.block_number)
block_time=$(field anchor.block_time)
sequence=$(field anchor.batch_sequence)
[ "$schema" = 32770 ] || fail "journal leaf schema $schema: this script knows 32770 (0x8002)"

digest=$(utf8_keccak "$text")
echo "1. digest      = keccak256(utf8(record text))             = $digest"
kind_hash=$(utf8_keccak "$kind")
id_hash=$(utf8_keccak "$id")
echo "2. kindHash    = keccak256(\"$kind\") = $kind_hash"
echo "   recordIdHash = keccak256(\"$id\") = $id_hash"
encoded=$("$CAST" abi-encode "leaf(uint16,bytes32,bytes32,uint64,uint64,bytes32,bytes32)" \
  "$schema" "$kind_hash" "$id_hash" "$version" "$recorded_at" "$prev" "$digest")
leaf=$("$CAST" keccak "$("$CAST" keccak "$encoded")")
echo "3. leaf        = keccak256(keccak256(abi.encode(32770, kindHash, recordIdHash, $version, $recorded_at, prevDigest, digest)))"
echo "               = $leaf"
[ "$leaf" = "$(field leaf_hash)" ] || fail "the document's leaf_hash is $(field leaf_hash)"

node_hash=$leaf
for sibling in $(field proof); do  # sorted-pair hashing, as MerkleProof.sol
  if [[ "$node_hash" < "$sibling" ]]; then pair=$("$CAST" concat-hex "$node_hash" "$sibling")
  else pair=$("$CAST" concat-hex "$sibling" "$node_hash"); fi
  node_hash=$("$CAST" keccak "$pair")
done
echo "4. the proof folds the leaf to $node_hash"
[ "$node_hash" = "$root" ] || fail "the document's root is $root"
(cd "$here" && node -e '
  const { StandardMerkleTree } = require("@openzeppelin/merkle-tree");
  const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const ok = StandardMerkleTree.verify(d.root, d.leaf_encoding, d.value, d.proof);
  console.log("   @openzeppelin/merkle-tree StandardMerkleTree.verify(root, leafEncoding, value, proof) =", ok);
  process.exit(ok ? 0 : 1)' "$proof") || fail "@openzeppelin/merkle-tree does not verify the proof"

anchored=$("$CAST" call "$contract" "anchorOf(bytes32)((uint64,uint64,uint64,uint32,uint16))" "$root" \
  --rpc-url "$rpc" --block latest | sed -E 's/ \[[^]]*\]//g')  # cast adds " [1.7e9]" to large numbers
echo "5. TraceAnchor.anchorOf(root) at the latest block = $anchored (block, time, sequence, leaves, schema)"
[[ "$anchored" == "($block, $block_time, $sequence, "* ]] || fail "the anchor says block $block, time $block_time, sequence $sequence"
proof_list="[$(field proof | tr ' ' ',')]"
verified=$("$CAST" call "$contract" "verify(bytes32,bytes32[],bytes32)(bool)" "$root" "$proof_list" "$leaf" \
  --rpc-url "$rpc" --block latest)
echo "   TraceAnchor.verify(root, proof, leaf) = $verified"
[ "$verified" = true ] || fail "the contract does not verify the proof"
# The typed check: the contract hashes the leaf from its values and checks the schema (0x8002 leaf
# under a root anchored with schema 0x8002), so no inner node or root can pass as the leaf.
typed=$("$CAST" call "$contract" \
  "verifyJournalValues(bytes32,bytes32[],(uint16,bytes32,bytes32,uint64,uint64,bytes32,bytes32))(bool)" \
  "$root" "$proof_list" "($schema,$kind_hash,$id_hash,$version,$recorded_at,$prev,$digest)" \
  --rpc-url "$rpc" --block latest)
echo "   TraceAnchor.verifyJournalValues(root, proof, (32770, kindHash, recordIdHash, $version, $recorded_at, prevDigest, digest)) = $typed"
[ "$typed" = true ] || fail "the contract does not verify the record's values"

status=$("$CAST" receipt "$tx" status --rpc-url "$rpc")
block_hash=$("$CAST" receipt "$tx" blockHash --rpc-url "$rpc")
number=$("$CAST" block "$block_hash" --field number --rpc-url "$rpc")
timestamp=$("$CAST" block "$block_hash" --field timestamp --rpc-url "$rpc")
echo "6. when: tx $tx (status $status) is in block $block_hash"
echo "   = block number $number, timestamp $timestamp ($(date -u -d "@$timestamp" +%Y-%m-%dT%H:%M:%SZ))"
[[ "$status" == 1* || "$status" == true ]] && [ "$number" = "$block" ] && [ "$timestamp" = "$block_time" ] || fail "the receipt's block is not the anchor's"
echo "VERIFIED: $kind/$id version $version is in journal batch $sequence, anchored in block $block at $timestamp"
