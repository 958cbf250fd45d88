// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity >=0.7.0 <0.9.0;

import {CompatibilityFallbackHandler} from "@safe-global/safe-smart-account/contracts/handler/CompatibilityFallbackHandler.sol";

/**
 * @dev Safe 1.5.0's `CompatibilityFallbackHandler`, used as is; this file only gives it an
 * artifact of its own. A {ConsortiumSafe} set up with it as fallback handler answers ERC-1271
 * `isValidSignature(bytes32,bytes)`: its owners' signatures (threshold) over the Safe message
 * wrapping the digest. So a bank whose account is a Safe multisig approves receivable
 * confirmations, offers and acceptances (`ReceivableRegistry`'s `...WithSignature` functions).
 */
contract ConsortiumSafeFallbackHandler is CompatibilityFallbackHandler {}
