#!/usr/bin/env node
// Reference oracle: runs @openzeppelin/merkle-tree (the pinned npm package) on requests read as one
// JSON document from stdin and prints one JSON document of answers to stdout. Used by the anchors
// interoperability tests and by bench/bench_merkle.py; it must stay a thin shell over the library.
//
// Request: {"ops": [op, ...]}, each op one of
//   {"op": "of", "encoding": [...], "values": [...], "proofs": [valueIndex...] | "all",
//    "multiproofs": [[valueIndex...], ...], "dump": bool}
//        -> {"root", "proofs": [[hex...]], "multiproofs": [{leaves, proof, proofFlags}], "dump"?}
//   {"op": "load", "dump": {...}, "proofs": [...], "multiproofs": [...]}  -> same shape as "of"
//   {"op": "verify", "root", "encoding", "leaf", "proof"}                -> {"ok": bool}
//   {"op": "verifyMulti", "root", "encoding", "multiproof"}              -> {"ok": bool}
//   {"op": "bench", "encoding", "values", "repeat"}                     -> {"seconds": [..], "root"}
// An op that throws answers {"error": message}.
'use strict';

const path = require('path');
const { StandardMerkleTree } = require(
  path.join(__dirname, '..', '..', 'node_modules', '@openzeppelin', 'merkle-tree'),
);

function answerTree(tree, op) {
  const out = { root: tree.root };
  let proofIdx = op.proofs || [];
  if (proofIdx === 'all') proofIdx = Array.from({ length: tree.length }, (_, i) => i);
  out.proofs = proofIdx.map((i) => tree.getProof(i));
  out.multiproofs = (op.multiproofs || []).map((idx) => tree.getMultiProof(idx));
  if (op.dump) out.dump = tree.dump();
  return out;
}

function run(op) {
  switch (op.op) {
    case 'of':
      return answerTree(StandardMerkleTree.of(op.values, op.encoding), op);
    case 'load':
      return answerTree(StandardMerkleTree.load(op.dump), op);
    case 'verify':
      return { ok: StandardMerkleTree.verify(op.root, op.encoding, op.leaf, op.proof) };
    case 'verifyMulti':
      return { ok: StandardMerkleTree.verifyMultiProof(op.root, op.encoding, op.multiproof) };
    case 'bench': {
      const seconds = [];
      let root = null;
      for (let r = 0; r < (op.repeat || 1); r++) {
        const t0 = process.hrtime.bigint();
        root = StandardMerkleTree.of(op.values, op.encoding).root;
        seconds.push(Number(process.hrtime.bigint() - t0) / 1e9);
      }
      return { seconds, root };
    }
    default:
      throw new Error(`unknown op ${op.op}`);
  }
}

const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', () => {
  const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const answers = request.ops.map((op) => {
    try {
      return run(op);
    } catch (e) {
      return { error: String(e && e.message ? e.message : e) };
    }
  });
  process.stdout.write(JSON.stringify({ answers }));
});
