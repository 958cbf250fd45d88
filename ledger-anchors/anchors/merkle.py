"""OpenZeppelin ``StandardMerkleTree``, byte for byte: same leaves, layout, proofs and dumps.

Mirrors ``@openzeppelin/merkle-tree`` 1.0.8 (``dist/core.js``, ``merkletree.js``, ``standard.js``):

- leaf = ``keccak256(keccak256(abi.encode(values)))`` for the tree's leaf ABI types;
- node = ``keccak256(min(a, b) ++ max(a, b))`` (sorted pair, as ``MerkleProof.sol``);
- leaves sorted by hash (stable sort, ``sortLeaves: true``), then laid out as a complete binary
  tree in one array: the root at 0, node ``i``'s children at ``2i+1`` and ``2i+2``, the k-th
  sorted leaf at ``len(tree) - 1 - k``;
- dump format ``standard-v1``: ``{"format", "leafEncoding", "tree", "values": [{"value",
  "treeIndex"}]}`` with values in the caller's original order.

Pure Python (no web3): an auditor can use this module alone. Every bound is named, and checks
are plain ``if`` statements, which ``python -O`` keeps.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from anchors.abi import compile_encoder, to_json_value, type_encoder
from anchors.keccak import keccak256
from anchors.errors import InvalidInputError

DUMP_FORMAT = "standard-v1"
HASH_BYTES = 32
# A tree holds at most LEAVES_MAX leaves (a batch is far smaller; the bound keeps memory finite:
# ~300 bytes per leaf for the nodes alone).
LEAVES_MAX = 1 << 24
# The deepest leaf of a LEAVES_MAX tree is at depth 24; 32 leaves room and still rejects junk.
PROOF_DEPTH_MAX = 32
# A multiproof covers at most this many leaves (its proof has fewer than 2 * leaves * depth nodes).
MULTIPROOF_LEAVES_MAX = 1 << 16
MULTIPROOF_NODES_MAX = 2 * MULTIPROOF_LEAVES_MAX * PROOF_DEPTH_MAX


# -- bytes helpers --------------------------------------------------------------------------


def to_bytes32(node: Any, what: str = "node") -> bytes:
    """A 32-byte node from bytes or a 0x-hex string; InvalidInputError otherwise."""
    if isinstance(node, (bytes, bytearray, memoryview)):
        raw = bytes(node)
    elif isinstance(node, str):
        text = node[2:] if node.startswith(("0x", "0X")) else node
        if len(text) != 2 * HASH_BYTES:
            raise InvalidInputError(f"{what} must be 32 bytes (0x and 64 hex digits), got {node[:80]!r}")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise InvalidInputError(f"{what} is not hex: {node[:80]!r}") from None
    else:
        raise InvalidInputError(f"{what} must be bytes or a 0x-hex string, got {type(node).__name__}")
    if len(raw) != HASH_BYTES:
        raise InvalidInputError(f"{what} must be 32 bytes, got {len(raw)}")
    return raw


def to_hex(node: bytes) -> str:
    return "0x" + node.hex()


def node_hash(a: bytes, b: bytes) -> bytes:
    """``keccak256`` of the sorted pair, as ``MerkleProof.sol``'s ``_hashPair``."""
    return keccak256(a + b) if a <= b else keccak256(b + a)


# -- leaves ---------------------------------------------------------------------------------


def _leaf_encoding(types: Sequence[str]) -> tuple[str, ...]:
    if isinstance(types, str) or not isinstance(types, Sequence):
        raise InvalidInputError("leaf encoding must be a list of ABI type strings")
    encoding = tuple(types)
    for abi_type in encoding:
        type_encoder(abi_type)
    return encoding


def standard_leaf_hash(leaf_encoding: Sequence[str], value: Sequence[Any]) -> bytes:
    """``keccak256(keccak256(abi.encode(value)))``."""
    return keccak256(keccak256(compile_encoder(_leaf_encoding(leaf_encoding))(value)))


def leaf_hashes(leaf_encoding: Sequence[str], values: Iterable[Sequence[Any]]) -> list[bytes]:
    """Leaf hashes of many values (the hot loop of a tree build, kept tight)."""
    encode = compile_encoder(_leaf_encoding(leaf_encoding))
    k = keccak256
    return [k(k(encode(v))) for v in values]


# -- core (index arithmetic of core.js) -----------------------------------------------------


def make_merkle_tree(leaves: Sequence[bytes]) -> list[bytes]:
    """The node array of a tree whose leaves, in this order, are ``leaves``.

    Internal nodes are computed in index runs ``[b // 2, b)``: every child of such a run has an
    index >= b, so it is already known. This is the same array core.js builds node by node.
    """
    count = len(leaves)
    if count == 0:
        raise InvalidInputError("expected a non-zero number of leaves")
    if count > LEAVES_MAX:
        raise InvalidInputError(f"{count} leaves: a tree holds at most {LEAVES_MAX}")
    for leaf in leaves:
        if not isinstance(leaf, bytes) or len(leaf) != HASH_BYTES:
            raise InvalidInputError("merkle tree leaves must be 32-byte hashes")
    size = 2 * count - 1
    tree: list[bytes] = [b""] * (count - 1)
    tree.extend(reversed(leaves))
    k = keccak256
    end = count - 1
    while end > 0:
        start = end // 2
        lefts = tree[2 * start + 1:2 * end:2]
        rights = tree[2 * start + 2:2 * end + 1:2]
        tree[start:end] = [k(a + b) if a <= b else k(b + a) for a, b in zip(lefts, rights)]
        end = start
    if len(tree) != size:
        raise RuntimeError("merkle tree size invariant broken")
    return tree


def _check_leaf_index(tree: Sequence[bytes], index: int) -> None:
    if not (isinstance(index, int) and 0 <= index < len(tree) and 2 * index + 1 >= len(tree)):
        raise InvalidInputError(f"index {index!r} is not a leaf of this tree")


def _sibling(index: int) -> int:
    return index - 1 if index % 2 == 0 else index + 1


def tree_proof(tree: Sequence[bytes], tree_index: int) -> list[bytes]:
    """Sibling hashes from the leaf at ``tree_index`` up to the root."""
    _check_leaf_index(tree, tree_index)
    proof: list[bytes] = []
    index = tree_index
    while index > 0:
        if len(proof) >= PROOF_DEPTH_MAX:
            raise InvalidInputError(f"proof deeper than PROOF_DEPTH_MAX={PROOF_DEPTH_MAX}")
        proof.append(tree[_sibling(index)])
        index = (index - 1) // 2
    return proof


def process_proof(leaf: Any, proof: Sequence[Any]) -> bytes:
    """Fold ``proof`` onto ``leaf``; the result is the root it proves (core.js ``processProof``)."""
    node = to_bytes32(leaf, "leaf")
    if isinstance(proof, (str, bytes)) or not isinstance(proof, Sequence):
        raise InvalidInputError("proof must be a list of 32-byte hashes")
    if len(proof) > PROOF_DEPTH_MAX:
        raise InvalidInputError(f"proof has {len(proof)} nodes; at most PROOF_DEPTH_MAX={PROOF_DEPTH_MAX}")
    for i, sibling in enumerate(proof):
        node = node_hash(node, to_bytes32(sibling, f"proof[{i}]"))
    return node


@dataclass(frozen=True)
class MultiProof:
    """Leaves (values or leaf hashes) in proof order, helper nodes, and the flags that fold them."""

    leaves: list[Any]
    proof: list[str]
    proof_flags: list[bool]

    def to_json(self) -> dict[str, Any]:
        """The shape @openzeppelin/merkle-tree uses: ``{"leaves", "proof", "proofFlags"}``."""
        return {"leaves": list(self.leaves), "proof": list(self.proof), "proofFlags": list(self.proof_flags)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MultiProof:
        if not isinstance(data, Mapping):
            raise InvalidInputError("a multiproof must be an object {leaves, proof, proofFlags}")
        missing = [k for k in ("leaves", "proof", "proofFlags") if k not in data]
        if missing:
            raise InvalidInputError(f"multiproof lacks {missing}")
        flags = data["proofFlags"]
        if not isinstance(flags, list) or not all(isinstance(f, bool) for f in flags):
            raise InvalidInputError("multiproof proofFlags must be a list of booleans")
        if not isinstance(data["leaves"], list) or not isinstance(data["proof"], list):
            raise InvalidInputError("multiproof leaves and proof must be lists")
        return cls(list(data["leaves"]), list(data["proof"]), list(flags))


def tree_multiproof(tree: Sequence[bytes], tree_indices: Sequence[int]) -> tuple[list[int], list[bytes], list[bool]]:
    """``(leaf tree indices in proof order, proof nodes, flags)``, as core.js ``getMultiProof``."""
    if len(tree_indices) > MULTIPROOF_LEAVES_MAX:
        raise InvalidInputError(f"a multiproof covers at most MULTIPROOF_LEAVES_MAX={MULTIPROOF_LEAVES_MAX} leaves")
    for index in tree_indices:
        _check_leaf_index(tree, index)
    ordered = sorted(tree_indices, reverse=True)
    for a, b in zip(ordered, ordered[1:]):
        if a == b:
            raise InvalidInputError("cannot prove a duplicated index")
    stack = deque(ordered)
    proof: list[bytes] = []
    flags: list[bool] = []
    steps_max = len(tree)  # every step consumes a node and moves up: at most one step per node
    while stack and stack[0] > 0:
        if len(flags) >= steps_max:
            raise RuntimeError("multiproof construction did not terminate")
        j = stack.popleft()
        s = _sibling(j)
        if stack and stack[0] == s:
            flags.append(True)
            stack.popleft()
        else:
            flags.append(False)
            proof.append(tree[s])
        stack.append((j - 1) // 2)
    if not ordered:
        proof.append(tree[0])
    return ordered, proof, flags


def process_multiproof(leaves: Sequence[Any], proof: Sequence[Any], proof_flags: Sequence[bool]) -> bytes:
    """The root a multiproof folds to (core.js ``processMultiProof``, ``MerkleProof.sol``).

    Raises InvalidInputError when the parts cannot fit together (counts disagree), which is a
    malformed proof, not merely a wrong one.
    """
    if len(leaves) > MULTIPROOF_LEAVES_MAX or len(proof) > MULTIPROOF_NODES_MAX:
        raise InvalidInputError("multiproof exceeds MULTIPROOF_LEAVES_MAX / MULTIPROOF_NODES_MAX")
    if len(proof_flags) > len(leaves) + len(proof):
        raise InvalidInputError("multiproof has more flags than leaves and proof nodes")
    stack = deque(to_bytes32(leaf, f"leaves[{i}]") for i, leaf in enumerate(leaves))
    nodes = deque(to_bytes32(node, f"proof[{i}]") for i, node in enumerate(proof))
    if len(nodes) < sum(1 for f in proof_flags if not f):
        raise InvalidInputError("invalid multiproof format: too few proof nodes for the flags")
    if len(stack) + len(nodes) != len(proof_flags) + 1:
        raise InvalidInputError("multiproof leaves and proof are not compatible with its flags")
    for flag in proof_flags:
        if not isinstance(flag, bool):
            raise InvalidInputError("multiproof flags must be booleans")
        if not stack:
            raise InvalidInputError("multiproof flags consume more leaves than given")
        a = stack.popleft()
        if flag:
            if not stack:
                raise InvalidInputError("multiproof flags consume more leaves than given")
            b = stack.popleft()
        else:
            b = nodes.popleft()
        stack.append(node_hash(a, b))
    if len(stack) + len(nodes) != 1:
        raise InvalidInputError("multiproof does not fold to a single root")
    return stack.pop() if stack else nodes.popleft()


def verify(root: Any, leaf_encoding: Sequence[str], value: Sequence[Any], proof: Sequence[Any]) -> bool:
    """Whether ``value`` with ``proof`` folds to ``root`` (``StandardMerkleTree.verify``)."""
    return to_bytes32(root, "root") == process_proof(standard_leaf_hash(leaf_encoding, value), proof)


def verify_multiproof(root: Any, leaf_encoding: Sequence[str], multiproof: MultiProof | Mapping[str, Any]) -> bool:
    """Whether a multiproof of values folds to ``root`` (``StandardMerkleTree.verifyMultiProof``)."""
    mp = multiproof if isinstance(multiproof, MultiProof) else MultiProof.from_json(multiproof)
    hashes = [standard_leaf_hash(leaf_encoding, v) for v in mp.leaves]
    return to_bytes32(root, "root") == process_multiproof(hashes, mp.proof, mp.proof_flags)


# -- the tree -------------------------------------------------------------------------------


class StandardMerkleTree:
    """A built tree: nodes, the values in their original order, and each value's node index.

    Build with :meth:`of` or :meth:`load`. Values are kept as given (validated); :meth:`dump`
    writes their JSON form.
    """

    __slots__ = ("_tree", "_values", "_tree_indices", "_leaf_encoding", "_lookup")

    def __init__(self, tree: list[bytes], values: list[Sequence[Any]], tree_indices: list[int],
                 leaf_encoding: tuple[str, ...]) -> None:
        self._tree = tree
        self._values = values
        self._tree_indices = tree_indices
        self._leaf_encoding = leaf_encoding
        self._lookup: dict[bytes, int] | None = None

    @classmethod
    def of(cls, values: Sequence[Sequence[Any]], leaf_encoding: Sequence[str], *,
           sort_leaves: bool = True) -> StandardMerkleTree:
        """Build the tree of ``values`` (``StandardMerkleTree.of``)."""
        encoding = _leaf_encoding(leaf_encoding)
        count = len(values)
        if count == 0:
            raise InvalidInputError("expected a non-zero number of leaves")
        if count > LEAVES_MAX:
            raise InvalidInputError(f"{count} leaves: a tree holds at most LEAVES_MAX={LEAVES_MAX}")
        hashes = leaf_hashes(encoding, values)
        order = sorted(range(count), key=hashes.__getitem__) if sort_leaves else list(range(count))
        tree = make_merkle_tree([hashes[i] for i in order])
        last = len(tree) - 1
        tree_indices = [0] * count
        for leaf_index, value_index in enumerate(order):
            tree_indices[value_index] = last - leaf_index
        return cls(tree, list(values), tree_indices, encoding)

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> StandardMerkleTree:
        """Load a ``standard-v1`` dump (ours or the JS library's) and check it completely."""
        if not isinstance(data, Mapping):
            raise InvalidInputError("a tree dump must be a JSON object")
        if data.get("format") != DUMP_FORMAT:
            raise InvalidInputError(f"unknown format {data.get('format')!r}; expected {DUMP_FORMAT!r}")
        if "leafEncoding" not in data:
            raise InvalidInputError("expected leaf encoding")
        encoding = _leaf_encoding(data["leafEncoding"])
        raw_tree, raw_values = data.get("tree"), data.get("values")
        if not isinstance(raw_tree, list) or not isinstance(raw_values, list):
            raise InvalidInputError("a tree dump needs lists 'tree' and 'values'")
        if not raw_tree or len(raw_tree) > 2 * LEAVES_MAX - 1:
            raise InvalidInputError(f"tree has {len(raw_tree)} nodes: expected 1..{2 * LEAVES_MAX - 1}")
        tree = [to_bytes32(node, f"tree[{i}]") for i, node in enumerate(raw_tree)]
        values: list[Sequence[Any]] = []
        tree_indices: list[int] = []
        for i, entry in enumerate(raw_values):
            if not isinstance(entry, Mapping) or "value" not in entry or "treeIndex" not in entry:
                raise InvalidInputError(f"values[{i}] must be an object {{value, treeIndex}}")
            tree_index = entry["treeIndex"]
            if isinstance(tree_index, bool) or not isinstance(tree_index, int):
                raise InvalidInputError(f"values[{i}].treeIndex must be an integer")
            values.append(entry["value"])
            tree_indices.append(tree_index)
        loaded = cls(tree, values, tree_indices, encoding)
        loaded.validate()
        return loaded

    # -- reading --

    @property
    def root(self) -> str:
        return to_hex(self._tree[0])

    @property
    def root_bytes(self) -> bytes:
        return self._tree[0]

    @property
    def leaf_encoding(self) -> tuple[str, ...]:
        return self._leaf_encoding

    @property
    def depth(self) -> int:
        """Length of the longest proof (0 for a one-leaf tree)."""
        return (len(self._tree)).bit_length() - 1

    def __len__(self) -> int:
        return len(self._values)

    def at(self, index: int) -> Sequence[Any]:
        return self._values[index]

    def tree_index(self, index: int) -> int:
        self._check_value_index(index)
        return self._tree_indices[index]

    def entries(self) -> Iterable[tuple[int, Sequence[Any]]]:
        return enumerate(self._values)

    def leaf_hash(self, value: Sequence[Any]) -> bytes:
        return standard_leaf_hash(self._leaf_encoding, value)

    def leaf_hash_at(self, index: int) -> bytes:
        self._check_value_index(index)
        return self._tree[self._tree_indices[index]]

    # -- proofs --

    def leaf_lookup(self, value: Sequence[Any]) -> int:
        """Index of ``value`` (the last one, for duplicates, as the JS library)."""
        if self._lookup is None:
            self._lookup = {self._tree[t]: i for i, t in enumerate(self._tree_indices)}
        index = self._lookup.get(self.leaf_hash(value))
        if index is None:
            raise InvalidInputError("leaf is not in tree")
        return index

    def _value_index(self, leaf: int | Sequence[Any]) -> int:
        index = leaf if isinstance(leaf, int) and not isinstance(leaf, bool) else self.leaf_lookup(leaf)
        self._check_value_index(index)
        return index

    def _check_value_index(self, index: int) -> None:
        if not 0 <= index < len(self._values):
            raise InvalidInputError(f"index {index} out of bounds (tree has {len(self._values)} values)")

    def get_proof(self, leaf: int | Sequence[Any]) -> list[str]:
        """Proof of the value at index ``leaf`` (or of the value ``leaf``), as 0x-hex strings."""
        index = self._value_index(leaf)
        tree_index = self._tree_indices[index]
        proof = tree_proof(self._tree, tree_index)
        if process_proof(self._tree[tree_index], proof) != self._tree[0]:
            raise RuntimeError("unable to prove value: the tree is inconsistent")
        return [to_hex(node) for node in proof]

    def get_multiproof(self, leaves: Sequence[int | Sequence[Any]]) -> MultiProof:
        """Multiproof of several values; leaves come back as values, in proof order."""
        indices = [self._value_index(leaf) for leaf in leaves]
        ordered, proof, flags = tree_multiproof(self._tree, [self._tree_indices[i] for i in indices])
        by_tree_index = {self._tree_indices[i]: i for i in indices}
        multiproof = MultiProof([self._values[by_tree_index[t]] for t in ordered],
                                [to_hex(node) for node in proof], flags)
        if process_multiproof([self._tree[t] for t in ordered], proof, flags) != self._tree[0]:
            raise RuntimeError("unable to prove values: the tree is inconsistent")
        return multiproof

    def verify(self, leaf: int | Sequence[Any], proof: Sequence[Any]) -> bool:
        if isinstance(leaf, int) and not isinstance(leaf, bool):
            leaf_hash = self.leaf_hash_at(leaf)
        else:
            leaf_hash = self.leaf_hash(leaf)
        return process_proof(leaf_hash, proof) == self._tree[0]

    def verify_multiproof(self, multiproof: MultiProof | Mapping[str, Any]) -> bool:
        mp = multiproof if isinstance(multiproof, MultiProof) else MultiProof.from_json(multiproof)
        hashes = [self.leaf_hash_at(v) if isinstance(v, int) and not isinstance(v, bool)
                  else self.leaf_hash(v) for v in mp.leaves]
        return process_multiproof(hashes, mp.proof, mp.proof_flags) == self._tree[0]

    # -- integrity and dumps --

    def validate(self) -> None:
        """Check every value sits at its leaf and every node hashes its children."""
        tree = self._tree
        size = len(tree)
        for i, tree_index in enumerate(self._tree_indices):
            if not (0 <= tree_index < size and 2 * tree_index + 1 >= size):
                raise InvalidInputError(f"values[{i}].treeIndex {tree_index} is not a leaf index")
            if tree[tree_index] != self.leaf_hash(self._values[i]):
                raise InvalidInputError(f"merkle tree does not contain the expected value at values[{i}]")
        for i in range(size):
            left = 2 * i + 1
            if left + 1 < size:
                if tree[i] != node_hash(tree[left], tree[left + 1]):
                    raise InvalidInputError(f"merkle tree is invalid at node {i}")
            elif left < size:
                raise InvalidInputError(f"merkle tree is invalid: node {i} has one child")

    def dump(self) -> dict[str, Any]:
        """The ``standard-v1`` dump, readable by ``StandardMerkleTree.load`` of the JS library."""
        encoding = self._leaf_encoding
        return {
            "format": DUMP_FORMAT,
            "leafEncoding": list(encoding),
            "tree": [to_hex(node) for node in self._tree],
            "values": [
                {"value": [to_json_value(t, v) for t, v in zip(encoding, value)], "treeIndex": ti}
                for value, ti in zip(self._values, self._tree_indices)
            ],
        }


__all__ = [
    "DUMP_FORMAT",
    "LEAVES_MAX",
    "MULTIPROOF_LEAVES_MAX",
    "PROOF_DEPTH_MAX",
    "MultiProof",
    "StandardMerkleTree",
    "leaf_hashes",
    "make_merkle_tree",
    "node_hash",
    "process_multiproof",
    "process_proof",
    "standard_leaf_hash",
    "to_bytes32",
    "tree_multiproof",
    "tree_proof",
    "verify",
    "verify_multiproof",
]
