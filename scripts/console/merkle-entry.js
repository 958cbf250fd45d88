// The browser build of @openzeppelin/merkle-tree for the console's proof page (global OZMerkle):
// StandardMerkleTree (verify), the leaf hash and proof folding it uses, and the ABI encoder and
// keccak256 of its own dependencies, so the page checks a proof with OpenZeppelin's code.
// Built by scripts/build-console-merkle.sh into ledger_api/static/console/merkle-tree.min.js.
export { StandardMerkleTree } from "@openzeppelin/merkle-tree";
export { standardLeafHash, keccak256 } from "@openzeppelin/merkle-tree/dist/hashes";
export { processProof } from "@openzeppelin/merkle-tree/dist/core";
export { encode } from "@metamask/abi-utils";
