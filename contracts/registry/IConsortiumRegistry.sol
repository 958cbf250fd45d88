// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/**
 * @dev The consortium's membership: who is a member, with which accounts, roles and status.
 * Every other ledger contract asks this registry before it changes state, so suspending a
 * member stops it everywhere at once.
 */
interface IConsortiumRegistry {
    enum MemberStatus {
        None,
        Active,
        Suspended
    }

    /// @dev `id` is not a member.
    error RegistryUnknownMember(bytes32 id);
    /// @dev A member with `id` already exists.
    error RegistryMemberExists(bytes32 id);
    /// @dev `account` already belongs to member `memberId`.
    error RegistryAccountTaken(address account, bytes32 memberId);
    /// @dev `account` is not one of member `id`'s accounts.
    error RegistryAccountNotOfMember(address account, bytes32 id);
    /// @dev A member must keep at least one account.
    error RegistryLastAccount(bytes32 id);
    /// @dev The zero id, the zero address or an empty account list was given.
    error RegistryInvalidInput();
    /// @dev `country` is not two upper-case ASCII letters (ISO 3166-1 alpha-2).
    error RegistryInvalidCountry(bytes2 country);
    /// @dev `role` is not one of the member roles this registry knows.
    error RegistryUnknownRole(bytes32 role);
    /// @dev `account` belongs to no member.
    error RegistryNotAMember(address account);
    /// @dev The member of `account` is not active (suspended).
    error RegistryMemberNotActive(address account, bytes32 memberId);
    /// @dev The member of `account` lacks `role`.
    error RegistryMissingRole(address account, bytes32 memberId, bytes32 role);
    /// @dev The member is already in the requested status.
    error RegistryStatusUnchanged(bytes32 id, MemberStatus status);

    event MemberOnboarded(bytes32 indexed id, bytes2 country, uint256 roleMask);
    event MemberAccountAdded(bytes32 indexed id, address indexed account);
    event MemberAccountRemoved(bytes32 indexed id, address indexed account);
    event MemberRoleGranted(bytes32 indexed id, bytes32 indexed role);
    event MemberRoleRevoked(bytes32 indexed id, bytes32 indexed role);
    event MemberCountryChanged(bytes32 indexed id, bytes2 country);
    event MemberSuspended(bytes32 indexed id);
    event MemberReactivated(bytes32 indexed id);

    /// @dev The member id of `account`, or zero.
    function memberOf(address account) external view returns (bytes32);

    /// @dev Whether `account` belongs to an active member holding `role`.
    function isActiveWithRole(address account, bytes32 role) external view returns (bool);

    /**
     * @dev Returns the member id of `account`. Reverts unless the account belongs to an active
     * member holding `role` (with {RegistryNotAMember}, {RegistryMemberNotActive} or
     * {RegistryMissingRole}).
     */
    function requireActiveRole(address account, bytes32 role) external view returns (bytes32);

    /// @dev Returns the member id of `account`; reverts unless it is an active member.
    function requireActiveMember(address account) external view returns (bytes32);

    /// @dev Whether member `id` is active.
    function isActive(bytes32 id) external view returns (bool);

    /// @dev Whether member `id` holds member role `role` (whatever its status).
    function memberHasRole(bytes32 id, bytes32 role) external view returns (bool);
}
