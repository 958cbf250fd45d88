// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/**
 * @dev The refusals a {ConsortiumGuarded} contract can give when it asks the registry about its
 * caller ({IConsortiumRegistry-requireActiveRole}, {IConsortiumRegistry-requireActiveMember}).
 * The registry reverts with them and the guarded contract lets them bubble up, so each guarded
 * contract's interface inherits this one: a client holding only that contract's ABI can decode
 * every refusal it can give.
 */
interface IConsortiumGuardErrors {
    /**
     * @dev `account` belongs to no member.
     * @param account the caller that was checked
     */
    error RegistryNotAMember(address account);

    /**
     * @dev The member of `account` is not active (suspended).
     * @param account the caller that was checked
     * @param memberId the member `account` belongs to
     */
    error RegistryMemberNotActive(address account, bytes32 memberId);

    /**
     * @dev The member of `account` lacks `role`.
     * @param account the caller that was checked
     * @param memberId the member `account` belongs to
     * @param role the role the operation needs
     */
    error RegistryMissingRole(address account, bytes32 memberId, bytes32 role);
}
