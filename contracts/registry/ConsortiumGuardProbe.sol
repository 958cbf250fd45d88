// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IConsortiumRegistry} from "./IConsortiumRegistry.sol";
import {ConsortiumGuarded} from "./ConsortiumGuarded.sol";

/**
 * @dev The smallest {ConsortiumGuarded} contract: it answers who the acting party is, as every
 * ledger contract sees it. Tests use it to prove the guard's rules (a member's relayed, own-key
 * request acts as that member; a suspended member is refused everywhere) independently of any
 * ledger contract; an operator may deploy it to check a network's forwarder wiring. It holds no
 * ledger state; its only state change is the {GuardProbed} event.
 */
contract ConsortiumGuardProbe is ConsortiumGuarded {
    /// @dev `account` (the acting party, `_msgSender()`) acted as active member `memberId`.
    event GuardProbed(bytes32 indexed memberId, address indexed account, bytes32 role);

    constructor(IConsortiumRegistry registry_, address trustedForwarder_)
        ConsortiumGuarded(registry_, trustedForwarder_)
    {}

    /**
     * @dev Acts as the caller's member. Requirements: the acting party belongs to an active
     * member. Emits {GuardProbed} with a zero role.
     * @return memberId the acting member
     */
    function actAsMember() external returns (bytes32 memberId) {
        memberId = _requireMember();
        emit GuardProbed(memberId, _msgSender(), bytes32(0));
    }

    /**
     * @dev Acts as the caller's member in `role`. Requirements: the acting party belongs to an
     * active member holding `role`. Emits {GuardProbed}.
     * @param role the member role needed
     * @return memberId the acting member
     */
    function actWithRole(bytes32 role) external returns (bytes32 memberId) {
        memberId = _requireRole(role);
        emit GuardProbed(memberId, _msgSender(), role);
    }
}
