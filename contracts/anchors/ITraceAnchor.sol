// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IConsortiumGuardErrors} from "../registry/IConsortiumGuardErrors.sol";

/**
 * @dev Anchors Merkle roots of provenance-event batches so that anyone holding a leaf and its
 * proof (OpenZeppelin StandardMerkleTree scheme) can check, with any EVM client, that the leaf
 * belongs to a batch that was anchored, and when.
 *
 * Anchoring is done by the operator's account on behalf of the members (the events are recorded
 * through the service, which batches them); the acting member of each event is inside its leaf.
 * Batch sequences are global and strictly increasing, so an auditor can list every batch in
 * order and see any gap.
 */
interface ITraceAnchor is IConsortiumGuardErrors {
    /// @dev What the contract keeps per anchored root: one storage slot.
    struct Anchor {
        uint64 blockNumber;
        uint64 timestamp;
        uint64 sequence;
        uint32 leafCount;
        uint16 schemaVersion;
    }

    /// @dev The zero root was given.
    error TraceAnchorZeroRoot();
    /// @dev `root` is already anchored, as batch `sequence`.
    error TraceAnchorRootExists(bytes32 root, uint64 sequence);
    /// @dev `sequence` is not greater than the last anchored batch's `lastSequence`.
    error TraceAnchorSequenceNotIncreasing(uint64 sequence, uint64 lastSequence);
    /// @dev A batch must hold at least one leaf.
    error TraceAnchorEmptyBatch();
    /// @dev Leaf schema version zero is not a schema.
    error TraceAnchorInvalidSchemaVersion(uint16 schemaVersion);
    /// @dev The batch's first event time is after its last.
    error TraceAnchorInvalidTimeRange(uint64 firstEventTime, uint64 lastEventTime);

    /**
     * @dev Emitted when `root` is anchored as batch `sequence` by member `memberId`.
     */
    event RootAnchored(
        bytes32 indexed root,
        uint64 indexed sequence,
        bytes32 indexed memberId,
        uint32 leafCount,
        uint16 schemaVersion,
        uint64 firstEventTime,
        uint64 lastEventTime
    );

    /**
     * @dev Anchors `root`, the Merkle root of a batch of `leafCount` leaves of leaf schema
     * `schemaVersion`, whose events occurred from `firstEventTime` to `lastEventTime` (unix s).
     * Gas does not depend on the batch size.
     *
     * Requirements:
     * - the caller is an account of an active member holding the OPERATOR role;
     * - `root` is not zero and not anchored yet;
     * - `sequence` is greater than {lastSequence};
     * - `leafCount` and `schemaVersion` are not zero, `firstEventTime <= lastEventTime`.
     *
     * Emits a {RootAnchored} event.
     */
    function anchor(
        bytes32 root,
        uint64 sequence,
        uint32 leafCount,
        uint16 schemaVersion,
        uint64 firstEventTime,
        uint64 lastEventTime
    ) external;

    /**
     * @dev Whether `leaf` with `proof` folds to `root` (sorted-pair hashing, OpenZeppelin
     * {MerkleProof}) and `root` is anchored. A proof longer than {PROOF_LENGTH_MAX} is false.
     */
    function verify(bytes32 root, bytes32[] calldata proof, bytes32 leaf) external view returns (bool);

    /// @dev The anchor record of `root`; all zero (blockNumber 0) when `root` is not anchored.
    function anchorOf(bytes32 root) external view returns (Anchor memory);

    /// @dev Whether `root` is anchored.
    function isAnchored(bytes32 root) external view returns (bool);

    /// @dev The sequence of the last anchored batch (0 before the first).
    function lastSequence() external view returns (uint64);
}
