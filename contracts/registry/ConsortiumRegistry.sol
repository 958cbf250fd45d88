// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IConsortiumRegistry} from "./IConsortiumRegistry.sol";

/**
 * @dev Consortium membership. Registry administrators (OpenZeppelin `DEFAULT_ADMIN_ROLE`) onboard,
 * change and suspend members; a member has an id, a country, one or more accounts, a set of member
 * roles and a status. Member roles are those of {ROLE_OPERATOR} .. {ROLE_AUDITOR}.
 *
 * It also answers Hyperledger Besu's (<= 25.5) on-chain account permissioning call
 * {transactionAllowed}: only accounts of active members, and registry admins, may transact.
 */
contract ConsortiumRegistry is AccessControl, IConsortiumRegistry {
    bytes32 public constant ROLE_OPERATOR = keccak256("OPERATOR");
    bytes32 public constant ROLE_FINANCE = keccak256("FINANCE");
    bytes32 public constant ROLE_SUPPLIER = keccak256("SUPPLIER");
    bytes32 public constant ROLE_BUYER = keccak256("BUYER");
    bytes32 public constant ROLE_FINANCIER = keccak256("FINANCIER");
    bytes32 public constant ROLE_AUDITOR = keccak256("AUDITOR");

    /// @dev Bounds the accounts of one member, so that no loop over them is unbounded.
    uint256 public constant ACCOUNTS_PER_MEMBER_MAX = 16;

    struct Member {
        MemberStatus status;
        bytes2 country;
        uint256 roleMask;
        address[] accounts;
    }

    mapping(bytes32 id => Member) private _members;
    mapping(address account => bytes32 id) private _memberOf;
    bytes32[] private _memberIds;

    constructor(address admin) {
        if (admin == address(0)) revert RegistryInvalidInput();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /**
     * @dev Onboards member `id` as active, with its country, accounts and member roles.
     *
     * Requirements: caller is a registry admin; `id` is new and non-zero; 1..16 accounts, none
     * already taken; a valid ISO 3166 alpha-2 country; known roles.
     *
     * Emits {MemberOnboarded}, one {MemberAccountAdded} per account and one {MemberRoleGranted}
     * per role.
     */
    function onboardMember(bytes32 id, bytes2 country, address[] calldata accounts, bytes32[] calldata roles)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        if (id == bytes32(0) || accounts.length == 0) revert RegistryInvalidInput();
        if (accounts.length > ACCOUNTS_PER_MEMBER_MAX) revert RegistryInvalidInput();
        if (_members[id].status != MemberStatus.None) revert RegistryMemberExists(id);
        _checkCountry(country);
        uint256 mask = 0;
        for (uint256 i = 0; i < roles.length; ++i) {
            mask |= _roleBit(roles[i]);
        }
        Member storage m = _members[id];
        m.status = MemberStatus.Active;
        m.country = country;
        m.roleMask = mask;
        _memberIds.push(id);
        emit MemberOnboarded(id, country, mask);
        for (uint256 i = 0; i < accounts.length; ++i) {
            _addAccount(id, accounts[i]);
        }
        for (uint256 i = 0; i < roles.length; ++i) {
            emit MemberRoleGranted(id, roles[i]);
        }
    }

    /**
     * @dev Adds `account` to member `id`.
     *
     * Requirements: caller is a registry admin; the member exists; the account is free; the
     * member has fewer than {ACCOUNTS_PER_MEMBER_MAX} accounts.
     *
     * Emits {MemberAccountAdded}.
     */
    function addAccount(bytes32 id, address account) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireExists(id);
        if (_members[id].accounts.length >= ACCOUNTS_PER_MEMBER_MAX) revert RegistryInvalidInput();
        _addAccount(id, account);
    }

    /**
     * @dev Removes `account` from member `id`; the account can no longer act for it.
     *
     * Requirements: caller is a registry admin; the account belongs to the member; it is not the
     * member's last account.
     *
     * Emits {MemberAccountRemoved}.
     */
    function removeAccount(bytes32 id, address account) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireExists(id);
        if (_memberOf[account] != id) revert RegistryAccountNotOfMember(account, id);
        address[] storage accounts = _members[id].accounts;
        if (accounts.length == 1) revert RegistryLastAccount(id);
        for (uint256 i = 0; i < accounts.length; ++i) {
            if (accounts[i] == account) {
                accounts[i] = accounts[accounts.length - 1];
                accounts.pop();
                break;
            }
        }
        delete _memberOf[account];
        emit MemberAccountRemoved(id, account);
    }

    /**
     * @dev Grants member role `role` to member `id` (no-op if held).
     *
     * Requirements: caller is a registry admin; the member exists; the role is known.
     *
     * Emits {MemberRoleGranted} when the role was not held.
     */
    function grantMemberRole(bytes32 id, bytes32 role) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireExists(id);
        uint256 bit = _roleBit(role);
        if (_members[id].roleMask & bit == 0) {
            _members[id].roleMask |= bit;
            emit MemberRoleGranted(id, role);
        }
    }

    /**
     * @dev Revokes member role `role` from member `id` (no-op if not held).
     *
     * Requirements: caller is a registry admin; the member exists; the role is known.
     *
     * Emits {MemberRoleRevoked} when the role was held.
     */
    function revokeMemberRole(bytes32 id, bytes32 role) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireExists(id);
        uint256 bit = _roleBit(role);
        if (_members[id].roleMask & bit != 0) {
            _members[id].roleMask &= ~bit;
            emit MemberRoleRevoked(id, role);
        }
    }

    /**
     * @dev Changes member `id`'s country.
     *
     * Requirements: caller is a registry admin; the member exists; a valid country.
     *
     * Emits {MemberCountryChanged}.
     */
    function setCountry(bytes32 id, bytes2 country) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireExists(id);
        _checkCountry(country);
        _members[id].country = country;
        emit MemberCountryChanged(id, country);
    }

    /**
     * @dev Suspends member `id`: none of its accounts passes any role check until reactivated.
     *
     * Requirements: caller is a registry admin; the member is active.
     *
     * Emits {MemberSuspended}.
     */
    function suspendMember(bytes32 id) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireExists(id);
        if (_members[id].status != MemberStatus.Active) revert RegistryStatusUnchanged(id, MemberStatus.Suspended);
        _members[id].status = MemberStatus.Suspended;
        emit MemberSuspended(id);
    }

    /**
     * @dev Reactivates suspended member `id`.
     *
     * Requirements: caller is a registry admin; the member is suspended.
     *
     * Emits {MemberReactivated}.
     */
    function reactivateMember(bytes32 id) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireExists(id);
        if (_members[id].status != MemberStatus.Suspended) revert RegistryStatusUnchanged(id, MemberStatus.Active);
        _members[id].status = MemberStatus.Active;
        emit MemberReactivated(id);
    }

    /// @inheritdoc IConsortiumRegistry
    function memberOf(address account) external view returns (bytes32) {
        return _memberOf[account];
    }

    /// @dev Member `id`: status, country, role bit mask (bit i = i-th role of {memberRoles}) and accounts.
    function getMember(bytes32 id)
        external
        view
        returns (MemberStatus status, bytes2 country, uint256 roleMask, address[] memory accounts)
    {
        Member storage m = _members[id];
        return (m.status, m.country, m.roleMask, m.accounts);
    }

    /// @dev The number of members ever onboarded.
    function memberCount() external view returns (uint256) {
        return _memberIds.length;
    }

    /// @dev The id of the `index`-th member onboarded.
    function memberIdAt(uint256 index) external view returns (bytes32) {
        return _memberIds[index];
    }

    /// @inheritdoc IConsortiumRegistry
    function memberHasRole(bytes32 id, bytes32 role) public view returns (bool) {
        return _members[id].roleMask & _roleBit(role) != 0;
    }

    /// @inheritdoc IConsortiumRegistry
    function isActive(bytes32 id) public view returns (bool) {
        return _members[id].status == MemberStatus.Active;
    }

    /// @inheritdoc IConsortiumRegistry
    function isActiveWithRole(address account, bytes32 role) external view returns (bool) {
        bytes32 id = _memberOf[account];
        return id != bytes32(0) && isActive(id) && memberHasRole(id, role);
    }

    /// @inheritdoc IConsortiumRegistry
    function requireActiveRole(address account, bytes32 role) external view returns (bytes32) {
        bytes32 id = requireActiveMember(account);
        if (!memberHasRole(id, role)) revert RegistryMissingRole(account, id, role);
        return id;
    }

    /// @inheritdoc IConsortiumRegistry
    function requireActiveMember(address account) public view returns (bytes32) {
        bytes32 id = _memberOf[account];
        if (id == bytes32(0)) revert RegistryNotAMember(account);
        if (!isActive(id)) revert RegistryMemberNotActive(account, id);
        return id;
    }

    /**
     * @dev Besu account permissioning (the `permissions-accounts-contract` interface of Besu <= 25.5):
     * a transaction is allowed when its sender is a registry admin or an account of an active member.
     */
    function transactionAllowed(address sender, address, uint256, uint256, uint256, bytes calldata)
        external
        view
        returns (bool)
    {
        if (hasRole(DEFAULT_ADMIN_ROLE, sender)) return true;
        bytes32 id = _memberOf[sender];
        return id != bytes32(0) && isActive(id);
    }

    function _addAccount(bytes32 id, address account) private {
        if (account == address(0)) revert RegistryInvalidInput();
        bytes32 owner = _memberOf[account];
        if (owner != bytes32(0)) revert RegistryAccountTaken(account, owner);
        _memberOf[account] = id;
        _members[id].accounts.push(account);
        emit MemberAccountAdded(id, account);
    }

    function _requireExists(bytes32 id) private view {
        if (_members[id].status == MemberStatus.None) revert RegistryUnknownMember(id);
    }

    function _checkCountry(bytes2 country) private pure {
        for (uint256 i = 0; i < 2; ++i) {
            bytes1 c = country[i];
            if (c < 0x41 || c > 0x5a) revert RegistryInvalidCountry(country);
        }
    }

    function _roleBit(bytes32 role) private pure returns (uint256) {
        if (role == ROLE_OPERATOR) return 1 << 0;
        if (role == ROLE_FINANCE) return 1 << 1;
        if (role == ROLE_SUPPLIER) return 1 << 2;
        if (role == ROLE_BUYER) return 1 << 3;
        if (role == ROLE_FINANCIER) return 1 << 4;
        if (role == ROLE_AUDITOR) return 1 << 5;
        revert RegistryUnknownRole(role);
    }
}
