// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC2771Forwarder} from "@openzeppelin/contracts/metatx/ERC2771Forwarder.sol";

/**
 * @dev The consortium's trusted forwarder (ERC-2771): a member signs an EIP-712 `ForwardRequest`
 * with its own key and any relayer (the service's relayer account) submits it; every ledger
 * contract then sees the member's address as `_msgSender()`. OpenZeppelin's audited forwarder is
 * used as is: per-signer nonces, deadlines, and a signature check that refuses forged or replayed
 * requests on chain.
 *
 * A valid request whose inner call reverts makes {execute} revert with `FailedCall()` (the nonce is
 * not used): the inner reason is not returned. A relayer recovers it by simulating the inner call,
 * `eth_call {from: forwarder, to: request.to, data: request.data ++ request.from}`, which is what
 * the target's ERC2771Context decodes (see docs/governance.md).
 */
contract LedgerForwarder is ERC2771Forwarder {
    /// @dev The EIP-712 domain is named "LedgerForwarder" (version "1"): members sign requests for it.
    constructor() ERC2771Forwarder("LedgerForwarder") {}
}
