// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IConsortiumGuarded} from "../registry/IConsortiumGuarded.sol";

/**
 * @dev Anchors Merkle roots of batches (provenance events, journal record versions) so that anyone
 * holding a leaf and its proof (OpenZeppelin StandardMerkleTree scheme) can check, with any EVM
 * client, that the leaf belongs to a batch that was anchored, and when.
 *
 * Anchoring is done by the operator's account on behalf of the members (the events are recorded
 * through the service, which batches them); the acting member of each event is inside its leaf.
 * Batch sequences are global and strictly consecutive (1, 2, 3, ...): each anchor takes
 * {lastSequence} + 1, so an auditor reading the {RootAnchored} events knows every batch exists
 * and none is missing, and no sequence can be chosen that blocks later anchors.
 *
 * Verification comes in two strengths:
 * - {verify} takes a leaf *hash*. Like OpenZeppelin's {MerkleProof-verify}, it cannot tell a leaf
 *   from an inner node: an inner node of an anchored tree with the rest of its path, or the root
 *   itself with an empty proof, also returns true. Callers must hash the leaf themselves from its
 *   values (`keccak256(bytes.concat(keccak256(abi.encode(values))))`) and never accept a leaf hash
 *   from the party being checked.
 * - {verifyValues}, {verifyEventValues} and {verifyJournalValues} take the leaf's *values* and hash
 *   them on chain the StandardMerkleTree way (double keccak of their ABI encoding). A 64-byte inner
 *   node can then only pass as a leaf by finding a keccak preimage, so an inner node or the root
 *   never verifies as a leaf. The typed ones also check the leaf schema against the anchor's.
 *
 * Inherited from {IConsortiumGuarded}: `registry`, `trustedForwarder`, `isTrustedForwarder` and
 * the guard's errors.
 */
interface ITraceAnchor is IConsortiumGuarded {
    /**
     * @dev What the contract keeps per anchored root: one storage slot.
     * @param blockNumber the block the root was anchored in (zero: not anchored)
     * @param timestamp that block's timestamp (unix seconds)
     * @param sequence the batch's global sequence
     * @param leafCount the number of leaves in the batch
     * @param schemaVersion the leaf schema of the batch (1: provenance events, 0x8002: journal)
     */
    struct Anchor {
        uint64 blockNumber;
        uint64 timestamp;
        uint64 sequence;
        uint32 leafCount;
        uint16 schemaVersion;
    }

    /**
     * @dev A provenance-event leaf, schema 1 (docs/anchors.md): the values whose ABI encoding is
     * double-hashed into the leaf.
     * @param schemaVersion 1
     * @param eventIdHash keccak256 of the event id
     * @param lotIdHash keccak256 of the lot id
     * @param productHash keccak256 of the normalised product (`gtin:...` or `sku:...`)
     * @param eventType 1 produced .. 10 destroyed
     * @param locationHash keccak256 of the location
     * @param memberId the acting member's registry id
     * @param occurredAt unix seconds of the occurrence
     * @param documentHash hash of the supporting document (zero: none)
     * @param attributesHash keccak256 of the canonical JSON of the attributes
     */
    struct EventLeaf {
        uint16 schemaVersion;
        bytes32 eventIdHash;
        bytes32 lotIdHash;
        bytes32 productHash;
        uint8 eventType;
        bytes32 locationHash;
        bytes32 memberId;
        uint64 occurredAt;
        bytes32 documentHash;
        bytes32 attributesHash;
    }

    /**
     * @dev A journal leaf, schema 0x8002 (docs/anchors.md): one version of one store record.
     * @param schemaVersion 0x8002
     * @param kindHash keccak256 of the record kind (`settlement`, `posting`, ...)
     * @param recordIdHash keccak256 of the record id
     * @param recordVersion the version, 1, 2, ... per record
     * @param recordedAt unix seconds the version was recorded
     * @param prevDigest the digest of the version before (zero for version 1)
     * @param digest keccak256 of the record's canonical JSON text
     */
    struct JournalLeaf {
        uint16 schemaVersion;
        bytes32 kindHash;
        bytes32 recordIdHash;
        uint64 recordVersion;
        uint64 recordedAt;
        bytes32 prevDigest;
        bytes32 digest;
    }

    /// @dev The zero root was given.
    error TraceAnchorZeroRoot();

    /**
     * @dev `root` is already anchored.
     * @param root the root given
     * @param sequence the batch it was anchored as
     */
    error TraceAnchorRootExists(bytes32 root, uint64 sequence);

    /**
     * @dev `sequence` is not the next one: anchors are numbered {lastSequence} + 1, with no gap.
     * @param expected the sequence the next anchor must carry ({lastSequence} + 1)
     * @param sequence the sequence given
     */
    error TraceAnchorSequenceNotNext(uint64 expected, uint64 sequence);

    /// @dev A batch must hold at least one leaf.
    error TraceAnchorEmptyBatch();

    /**
     * @dev Leaf schema version zero is not a schema.
     * @param schemaVersion the schema version given
     */
    error TraceAnchorInvalidSchemaVersion(uint16 schemaVersion);

    /**
     * @dev The batch's first event time is after its last.
     * @param firstEventTime the first event time given
     * @param lastEventTime the last event time given
     */
    error TraceAnchorInvalidTimeRange(uint64 firstEventTime, uint64 lastEventTime);

    /**
     * @dev Emitted when `root` is anchored as batch `sequence` by member `memberId`.
     * @param root the batch's Merkle root
     * @param sequence the batch's global sequence
     * @param memberId the anchoring member (the operator)
     * @param leafCount the number of leaves in the batch
     * @param schemaVersion the batch's leaf schema
     * @param firstEventTime the earliest event (or record) time in the batch, unix seconds
     * @param lastEventTime the latest event (or record) time in the batch, unix seconds
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
     * - the caller is an account of an active member holding the OPERATOR role
     *   ({RegistryNotAMember}, {RegistryMemberNotActive}, {RegistryMissingRole});
     * - `root` is not zero ({TraceAnchorZeroRoot}) and not anchored yet ({TraceAnchorRootExists});
     * - `sequence` is {lastSequence} + 1 ({TraceAnchorSequenceNotNext});
     * - `leafCount` is not zero ({TraceAnchorEmptyBatch}), `schemaVersion` is not zero
     *   ({TraceAnchorInvalidSchemaVersion}), `firstEventTime <= lastEventTime`
     *   ({TraceAnchorInvalidTimeRange}).
     *
     * Emits a {RootAnchored} event.
     *
     * @param root the batch's Merkle root
     * @param sequence the batch's global sequence: {lastSequence} + 1
     * @param leafCount the number of leaves in the batch
     * @param schemaVersion the batch's leaf schema (1: provenance events, 0x8002: journal)
     * @param firstEventTime the earliest event (or record) time in the batch, unix seconds
     * @param lastEventTime the latest event (or record) time in the batch, unix seconds
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
     *
     * Caveat: `leaf` is taken as given. An inner node of an anchored tree (with the rest of its
     * path as `proof`), or `root` itself with an empty proof, also returns true. Prefer
     * {verifyValues} (or a typed variant), which hashes the leaf from its values.
     *
     * @param root an anchored root
     * @param proof the sibling hashes from the leaf up to the root
     * @param leaf the leaf hash, `keccak256(bytes.concat(keccak256(abi.encode(values))))`
     * @return whether `root` is anchored and the proof holds
     */
    function verify(bytes32 root, bytes32[] calldata proof, bytes32 leaf) external view returns (bool);

    /**
     * @dev Whether the leaf made of `encodedValues` is in the anchored batch `root`: the leaf is
     * hashed here, `keccak256(bytes.concat(keccak256(encodedValues)))`, exactly as OpenZeppelin's
     * StandardMerkleTree hashes `abi.encode(values)`, so no inner node or root passes as a leaf.
     * Works for any leaf schema; no schema check.
     *
     * @param root an anchored root
     * @param proof the sibling hashes from the leaf up to the root
     * @param encodedValues `abi.encode(values)` of the leaf's values, in its leaf encoding
     * @return whether `root` is anchored and the leaf's proof holds
     */
    function verifyValues(bytes32 root, bytes32[] calldata proof, bytes calldata encodedValues)
        external
        view
        returns (bool);

    /**
     * @dev {verifyValues} for a provenance-event leaf: true only if `leaf.schemaVersion` is 1,
     * `root` was anchored with leaf schema 1, and the leaf hashed here from its values is proven.
     *
     * @param root an anchored root of a provenance-event batch
     * @param proof the sibling hashes from the leaf up to the root
     * @param leaf the event leaf's values
     * @return whether the event leaf is in the anchored batch
     */
    function verifyEventValues(bytes32 root, bytes32[] calldata proof, EventLeaf calldata leaf)
        external
        view
        returns (bool);

    /**
     * @dev {verifyValues} for a journal leaf: true only if `leaf.schemaVersion` is 0x8002, `root`
     * was anchored with leaf schema 0x8002, and the leaf hashed here from its values is proven.
     *
     * @param root an anchored root of a journal batch
     * @param proof the sibling hashes from the leaf up to the root
     * @param leaf the journal leaf's values
     * @return whether the journal leaf is in the anchored batch
     */
    function verifyJournalValues(bytes32 root, bytes32[] calldata proof, JournalLeaf calldata leaf)
        external
        view
        returns (bool);

    /**
     * @dev The anchor record of `root`.
     * @param root any root
     * @return the record; all zero (blockNumber 0) when `root` is not anchored
     */
    function anchorOf(bytes32 root) external view returns (Anchor memory);

    /**
     * @dev Whether `root` is anchored.
     * @param root any root
     * @return whether it is anchored
     */
    function isAnchored(bytes32 root) external view returns (bool);

    /**
     * @dev The sequence of the last anchored batch; the next anchor must carry this + 1.
     * @return the last sequence (0 before the first anchor)
     */
    function lastSequence() external view returns (uint64);

    /**
     * @dev The longest proof the verify functions accept: a tree of 2^64 leaves; longer is false.
     * @return the bound
     */
    function PROOF_LENGTH_MAX() external view returns (uint256);

    /**
     * @dev The leaf schema of provenance events ({EventLeaf}).
     * @return 1
     */
    function EVENT_SCHEMA_VERSION() external view returns (uint16);

    /**
     * @dev The leaf schema of journal record versions ({JournalLeaf}).
     * @return 0x8002
     */
    function JOURNAL_SCHEMA_VERSION() external view returns (uint16);
}
