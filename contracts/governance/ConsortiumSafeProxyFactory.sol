// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity >=0.7.0 <0.9.0;

import {SafeProxyFactory} from "@safe-global/safe-smart-account/contracts/proxies/SafeProxyFactory.sol";

/**
 * @dev Safe 1.5.0's proxy factory, used as is: `createProxyWithNonce(singleton, setupCall, salt)`
 * deploys a Safe proxy and runs its `setup` (owners, threshold) in the same transaction, so no one
 * can set up a freshly deployed Safe before its deployer.
 */
contract ConsortiumSafeProxyFactory is SafeProxyFactory {}
