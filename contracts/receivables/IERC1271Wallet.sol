// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";

/**
 * @dev ERC-1271, as a contract wallet (a bank's Safe, say) answers it: the ABI the service uses to
 * ask a member's contract-wallet account, by eth_call, whether it approves an EIP-712 digest
 * before relaying the approval to {ReceivableRegistry} (which asks again itself).
 */
interface IERC1271Wallet is IERC1271 {}
