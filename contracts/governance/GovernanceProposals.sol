// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ISafe} from "@safe-global/safe-smart-account/contracts/interfaces/ISafe.sol";
import {Enum} from "@safe-global/safe-smart-account/contracts/libraries/Enum.sol";
import {IGovernanceProposals} from "./IGovernanceProposals.sol";

/// @dev See {IGovernanceProposals}: a stateless, powerless log of what each approved hash means.
contract GovernanceProposals is IGovernanceProposals {
    uint256 public constant NONCE_AHEAD_MAX = 64;
    // Groups arguments in memory only to keep the Safe call under the EVM's 16-slot stack reach.
    struct SafeTx {
        address to;
        uint256 value;
        uint256 nonce;
    }

    uint256 public constant DESCRIPTION_BYTES_MAX = 1024;

    /// @inheritdoc IGovernanceProposals
    function propose(
        ISafe safe,
        address to,
        uint256 value,
        bytes calldata data,
        uint256 nonce,
        string calldata description
    ) external returns (bytes32 safeTxHash) {
        // msg.sender, not an ERC-2771 sender: Safe owners act with their own transactions here,
        // exactly as they do for `approveHash`.
        if (!safe.isOwner(msg.sender)) revert GovernanceProposalsNotAnOwner(address(safe), msg.sender);
        uint256 current = safe.nonce();
        if (nonce < current || nonce > current + NONCE_AHEAD_MAX) {
            revert GovernanceProposalsInvalidNonce(address(safe), nonce, current);
        }
        if (bytes(description).length > DESCRIPTION_BYTES_MAX) {
            revert GovernanceProposalsDescriptionTooLong(bytes(description).length, DESCRIPTION_BYTES_MAX);
        }
        safeTxHash = _safeTxHash(safe, to, value, data, nonce);
        emit ProposalSubmitted(address(safe), safeTxHash, msg.sender, to, value, data, nonce, description);
    }

    /// @dev The Safe's own hash of the call (asked of the Safe, so it can never differ from what owners approve).
    function _safeTxHash(ISafe safe, address to, uint256 value, bytes calldata data, uint256 nonce)
        private
        view
        returns (bytes32)
    {
        SafeTx memory t = SafeTx(to, value, nonce);
        return safe.getTransactionHash(t.to, t.value, data, Enum.Operation.Call, 0, 0, 0, address(0), address(0), t.nonce);
    }
}
