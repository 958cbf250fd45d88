// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IConsortiumGuardErrors} from "./IConsortiumGuardErrors.sol";
import {IConsortiumRegistry} from "./IConsortiumRegistry.sol";

/**
 * @dev What every {ConsortiumGuarded} contract exposes besides its own functions: the registry it
 * asks and the ERC-2771 forwarder it trusts, and the refusals of the guard
 * ({IConsortiumGuardErrors}). A guarded contract's interface inherits this one, so a client
 * holding only that interface's ABI can call every function and decode every refusal.
 */
interface IConsortiumGuarded is IConsortiumGuardErrors {
    /**
     * @dev The consortium registry asked about the acting party of every state change.
     * @return the registry
     */
    function registry() external view returns (IConsortiumRegistry);

    /**
     * @dev The ERC-2771 forwarder whose relayed requests act for the member that signed them.
     * @return the trusted forwarder
     */
    function trustedForwarder() external view returns (address);

    /**
     * @dev Whether `forwarder` is the trusted forwarder.
     * @param forwarder any address
     * @return whether calls from it carry the acting party in their last 20 bytes
     */
    function isTrustedForwarder(address forwarder) external view returns (bool);
}
