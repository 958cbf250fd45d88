// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ConsortiumGuarded} from "../registry/ConsortiumGuarded.sol";
import {IConsortiumRegistry} from "../registry/IConsortiumRegistry.sol";
import {ITraceAnchor} from "./ITraceAnchor.sol";

/**
 * @dev Anchors of provenance-event batches (see {ITraceAnchor}). Only the OPERATOR role may
 * anchor: the operator's account submits batches on behalf of the members. Each root costs one
 * storage slot (block number, timestamp, sequence, leaf count and schema version packed).
 */
contract TraceAnchor is ITraceAnchor, ConsortiumGuarded {
    /// @dev Longest proof {verify} accepts: a tree of 2^64 leaves; anything longer is junk.
    uint256 public constant PROOF_LENGTH_MAX = 64;

    mapping(bytes32 root => Anchor) private _anchors;
    uint64 private _lastSequence;

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
        uint64 last = _lastSequence;
        if (sequence <= last) revert TraceAnchorSequenceNotIncreasing(sequence, last);
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
        if (_anchors[root].blockNumber == 0) return false;
        if (proof.length > PROOF_LENGTH_MAX) return false;
        return MerkleProof.verifyCalldata(proof, root, leaf);
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
}
