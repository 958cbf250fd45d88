// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity >=0.7.0 <0.9.0;

import {SafeL2} from "@safe-global/safe-smart-account/contracts/SafeL2.sol";

/**
 * @dev The governors' multisig: Safe 1.5.0 (`@safe-global/safe-smart-account`), the L2 variant,
 * which emits the full content of every executed transaction ({SafeMultiSigTransaction}) so that a
 * follower needs no tracing node. Used as is; this file only gives it an artifact of its own.
 *
 * Deployed once as the singleton and used through proxies made by {ConsortiumSafeProxyFactory}:
 * the governance Safe (M-of-N, proposer of the timelock) and the guardian Safe (k-of-n, suspender).
 * A governor approves a Safe transaction on chain with `approveHash` (event {ApproveHash}); once M
 * owners approved, anyone executes it with `execTransaction` and the approvals as signatures.
 */
contract ConsortiumSafe is SafeL2 {}
