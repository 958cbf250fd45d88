// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ISafe} from "@safe-global/safe-smart-account/contracts/interfaces/ISafe.sol";

/**
 * @dev The on-chain record of governance proposals. A Safe keeps only hashes of the transactions
 * its owners approve; here a governor publishes what a hash stands for, so that every member and
 * auditor can read each pending proposal (and check it against the approvals) from the chain alone.
 *
 * It holds no power and no state: it checks that the proposer is an owner of the Safe and computes
 * the Safe transaction hash itself, so the published content always matches the hash approved.
 */
interface IGovernanceProposals {
    /// @dev `account` is not an owner of `safe`.
    /// @param safe the Safe named in the proposal
    /// @param account the caller
    error GovernanceProposalsNotAnOwner(address safe, address account);
    /// @dev `nonce` is used already, or too far ahead of the Safe's `currentNonce`.
    /// @param safe the Safe named in the proposal
    /// @param nonce the nonce given
    /// @param currentNonce the Safe's current nonce
    error GovernanceProposalsInvalidNonce(address safe, uint256 nonce, uint256 currentNonce);
    /// @dev The description is longer than {DESCRIPTION_BYTES_MAX}.
    /// @param length the description's length in bytes
    /// @param max {DESCRIPTION_BYTES_MAX}
    error GovernanceProposalsDescriptionTooLong(uint256 length, uint256 max);

    /**
     * @dev Owner `proposer` of `safe` proposed the Safe transaction `safeTxHash`: a call of `to`
     * with `value` and `data` at Safe nonce `nonce` (no delegate call, no refund: every other
     * SafeTx field is zero).
     * @param safe the Safe that will execute it
     * @param safeTxHash the Safe transaction hash the governors approve
     * @param proposer the owner who published it
     * @param to the call's target
     * @param value wei sent with the call
     * @param data the call's data
     * @param nonce the Safe nonce the transaction will use
     * @param description what it does and why, for people
     */
    event ProposalSubmitted(
        address indexed safe,
        bytes32 indexed safeTxHash,
        address indexed proposer,
        address to,
        uint256 value,
        bytes data,
        uint256 nonce,
        string description
    );

    /**
     * @dev Publishes a proposal. Governors then approve `safeTxHash` with `safe.approveHash`, and
     * anyone executes it with `safe.execTransaction(to, value, data, 0, 0, 0, 0, 0, 0, signatures)`.
     *
     * Requirements: the caller owns `safe`; `nonce` is from the Safe's current nonce to
     * {NONCE_AHEAD_MAX} ahead of it; the description fits {DESCRIPTION_BYTES_MAX}.
     *
     * Emits {ProposalSubmitted}.
     *
     * @param safe the Safe that will execute it
     * @param to the call's target (the timelock for the governance Safe, the registry for the guardian)
     * @param value wei sent with the call (zero in this ledger)
     * @param data the call's data
     * @param nonce the Safe nonce the transaction will use
     * @param description what it does and why, for people
     * @return safeTxHash the Safe transaction hash to approve
     */
    function propose(
        ISafe safe,
        address to,
        uint256 value,
        bytes calldata data,
        uint256 nonce,
        string calldata description
    ) external returns (bytes32 safeTxHash);

    /// @dev How far ahead of a Safe's nonce a proposal may be queued.
    /// @return the bound
    function NONCE_AHEAD_MAX() external view returns (uint256);

    /// @dev The longest description accepted, in bytes.
    /// @return the bound
    function DESCRIPTION_BYTES_MAX() external view returns (uint256);
}
