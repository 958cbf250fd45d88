// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/**
 * @dev The consortium's governance delay: OpenZeppelin's audited {TimelockController}, used as is.
 * It holds the registry's default admin role, so every registry change is an operation that its
 * proposer (the governors' M-of-N Safe) schedules and that anyone executes once `minDelay` has
 * passed; the same Safe may cancel a scheduled operation.
 *
 * This wrapper only fixes the timelock's optional bootstrap admin to none: the timelock administers
 * itself from the first block (its roles and its delay change only through its own delayed
 * operations), so no deployer key keeps any power over it.
 */
contract ConsortiumTimelock is TimelockController {
    /**
     * @param minDelay the least delay (seconds) between scheduling and executing an operation
     * @param proposers accounts that may schedule (and cancel): the governance Safe
     * @param executors accounts that may execute ready operations; `address(0)` opens execution to anyone
     */
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors)
        TimelockController(minDelay, proposers, executors, address(0))
    {}
}
