// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ConsortiumGuarded} from "../registry/ConsortiumGuarded.sol";
import {IConsortiumGuarded} from "../registry/IConsortiumGuarded.sol";
import {IConsortiumRegistry} from "../registry/IConsortiumRegistry.sol";
import {ITraceAnchor} from "./ITraceAnchor.sol";

/**
 * @dev Anchors of provenance-event and journal batches (see {ITraceAnchor}). Only the OPERATOR
 * role may anchor: the operator's account submits batches on behalf of the members. Each root
 * costs one storage slot (block number, timestamp, sequence, leaf count and schema version
 * packed); sequences are consecutive, so the next one is always {lastSequence} + 1.
 */
contract TraceAnchor is ITraceAnchor, ConsortiumGuarded {
    /// @inheritdoc ITraceAnchor
    uint256 public constant PROOF_LENGTH_MAX = 64;
    /// @inheritdoc ITraceAnchor
    uint16 public constant EVENT_SCHEMA_VERSION = 1;
    /// @inheritdoc ITraceAnchor
    uint16 public constant JOURNAL_SCHEMA_VERSION = 0x8002;

    mapping(bytes32 root => Anchor) private _anchors;
    uint64 private _lastSequence;

    /**
     * @param registry_ the consortium registry asked about every caller
     * @param trustedForwarder_ the ERC-2771 forwarder whose relayed requests act for their signer
     */
    constructor(IConsortiumRegistry registry_, address trustedForwarder_)
        ConsortiumGuarded(registry_, trustedForwarder_)
    {}

    /// @inheritdoc ITraceAnchor
    function anchor(
        bytes32 root,
        uint64 sequence,
        uint32 leafCount,
        uint16 schemaVersion,
        uint64 firstEventTime,
        uint64 lastEventTime
    ) external {
        bytes32 memberId = _requireRole(ROLE_OPERATOR);
        if (root == bytes32(0)) revert TraceAnchorZeroRoot();
        Anchor storage existing = _anchors[root];
        if (existing.blockNumber != 0) revert TraceAnchorRootExists(root, existing.sequence);
        // Checked arithmetic: only after 2^64 - 1 anchors could this overflow (and then panic).
        uint64 expected = _lastSequence + 1;
        if (sequence != expected) revert TraceAnchorSequenceNotNext(expected, sequence);
        if (leafCount == 0) revert TraceAnchorEmptyBatch();
        if (schemaVersion == 0) revert TraceAnchorInvalidSchemaVersion(schemaVersion);
        if (firstEventTime > lastEventTime) revert TraceAnchorInvalidTimeRange(firstEventTime, lastEventTime);

        _anchors[root] = Anchor({
            blockNumber: uint64(block.number),
            timestamp: uint64(block.timestamp),
            sequence: sequence,
            leafCount: leafCount,
            schemaVersion: schemaVersion
        });
        _lastSequence = sequence;
        emit RootAnchored(root, sequence, memberId, leafCount, schemaVersion, firstEventTime, lastEventTime);
    }

    /// @inheritdoc ITraceAnchor
    function verify(bytes32 root, bytes32[] calldata proof, bytes32 leaf) external view returns (bool) {
        return _proven(root, proof, leaf);
    }

    /// @inheritdoc ITraceAnchor
    function verifyValues(bytes32 root, bytes32[] calldata proof, bytes calldata encodedValues)
        external
        view
        returns (bool)
    {
        return _proven(root, proof, _leafOf(encodedValues));
    }

    /// @inheritdoc ITraceAnchor
    function verifyEventValues(bytes32 root, bytes32[] calldata proof, EventLeaf calldata leaf)
        external
        view
        returns (bool)
    {
        return _provenOfSchema(root, proof, leaf.schemaVersion, EVENT_SCHEMA_VERSION, abi.encode(leaf));
    }

    /// @inheritdoc ITraceAnchor
    function verifyJournalValues(bytes32 root, bytes32[] calldata proof, JournalLeaf calldata leaf)
        external
        view
        returns (bool)
    {
        return _provenOfSchema(root, proof, leaf.schemaVersion, JOURNAL_SCHEMA_VERSION, abi.encode(leaf));
    }

    /// @inheritdoc ITraceAnchor
    function anchorOf(bytes32 root) external view returns (Anchor memory) {
        return _anchors[root];
    }

    /// @inheritdoc ITraceAnchor
    function isAnchored(bytes32 root) external view returns (bool) {
        return _anchors[root].blockNumber != 0;
    }

    /// @inheritdoc ITraceAnchor
    function lastSequence() external view returns (uint64) {
        return _lastSequence;
    }

    /// @inheritdoc IConsortiumGuarded
    function trustedForwarder() public view override(ConsortiumGuarded, IConsortiumGuarded) returns (address) {
        return super.trustedForwarder();
    }

    /// @inheritdoc IConsortiumGuarded
    function isTrustedForwarder(address forwarder)
        public
        view
        override(ConsortiumGuarded, IConsortiumGuarded)
        returns (bool)
    {
        return super.isTrustedForwarder(forwarder);
    }

    /// @dev Whether `root` is anchored and `proof` (at most {PROOF_LENGTH_MAX} long) folds `leaf` to it.
    function _proven(bytes32 root, bytes32[] calldata proof, bytes32 leaf) private view returns (bool) {
        if (_anchors[root].blockNumber == 0) return false;
        if (proof.length > PROOF_LENGTH_MAX) return false;
        return MerkleProof.verifyCalldata(proof, root, leaf);
    }

    /**
     * @dev The typed check shared by {verifyEventValues} and {verifyJournalValues}: the leaf's own
     * `leafSchemaVersion` and the schema `root` was anchored with must both be `schemaVersion`
     * (so a leaf of one schema never passes under a root of another), and the leaf hashed from
     * `encodedLeaf` must be proven by {_proven}.
     */
    function _provenOfSchema(
        bytes32 root,
        bytes32[] calldata proof,
        uint16 leafSchemaVersion,
        uint16 schemaVersion,
        bytes memory encodedLeaf
    ) private view returns (bool) {
        if (leafSchemaVersion != schemaVersion) return false;
        if (_anchors[root].schemaVersion != schemaVersion) return false;
        return _proven(root, proof, _leafOf(encodedLeaf));
    }

    /// @dev The StandardMerkleTree leaf of ABI-encoded values: keccak256 of their keccak256.
    function _leafOf(bytes memory encodedValues) private pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(encodedValues)));
    }
}
