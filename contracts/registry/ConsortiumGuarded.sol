// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC2771Context} from "@openzeppelin/contracts/metatx/ERC2771Context.sol";
import {IConsortiumGuarded} from "./IConsortiumGuarded.sol";
import {IConsortiumRegistry} from "./IConsortiumRegistry.sol";

/**
 * @dev Base of every ledger contract: it asks the {IConsortiumRegistry} for membership and roles
 * on each state change, so the contract enforces the consortium's rules itself, whoever calls it.
 *
 * The acting party is `_msgSender()` (ERC-2771): the caller itself, or the member whose signed
 * request the trusted forwarder ({LedgerForwarder}) relays. Derived contracts never read
 * `msg.sender` directly.
 */
abstract contract ConsortiumGuarded is ERC2771Context, IConsortiumGuarded {
    bytes32 internal constant ROLE_OPERATOR = keccak256("OPERATOR");
    bytes32 internal constant ROLE_FINANCE = keccak256("FINANCE");
    bytes32 internal constant ROLE_SUPPLIER = keccak256("SUPPLIER");
    bytes32 internal constant ROLE_BUYER = keccak256("BUYER");
    bytes32 internal constant ROLE_FINANCIER = keccak256("FINANCIER");
    bytes32 internal constant ROLE_AUDITOR = keccak256("AUDITOR");

    /// @inheritdoc IConsortiumGuarded
    IConsortiumRegistry public immutable registry;

    /**
     * @param registry_ the consortium registry asked about every caller
     * @param trustedForwarder_ the ERC-2771 forwarder whose relayed requests act for their signer
     */
    constructor(IConsortiumRegistry registry_, address trustedForwarder_) ERC2771Context(trustedForwarder_) {
        registry = registry_;
    }

    /// @inheritdoc IConsortiumGuarded
    function trustedForwarder() public view virtual override(ERC2771Context, IConsortiumGuarded) returns (address) {
        return super.trustedForwarder();
    }

    /// @inheritdoc IConsortiumGuarded
    function isTrustedForwarder(address forwarder)
        public
        view
        virtual
        override(ERC2771Context, IConsortiumGuarded)
        returns (bool)
    {
        return super.isTrustedForwarder(forwarder);
    }

    /**
     * @dev The caller's member id; reverts unless the caller is an active member holding `role`
     * ({RegistryNotAMember}, {RegistryMemberNotActive}, {RegistryMissingRole}).
     * @param role the member role the operation needs
     * @return the acting member's id
     */
    function _requireRole(bytes32 role) internal view returns (bytes32) {
        return registry.requireActiveRole(_msgSender(), role);
    }

    /**
     * @dev The caller's member id; reverts unless the caller is an active member
     * ({RegistryNotAMember}, {RegistryMemberNotActive}).
     * @return the acting member's id
     */
    function _requireMember() internal view returns (bytes32) {
        return registry.requireActiveMember(_msgSender());
    }
}
