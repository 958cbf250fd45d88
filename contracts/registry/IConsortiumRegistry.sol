// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/IAccessControlDefaultAdminRules.sol";
import {IERC5267} from "@openzeppelin/contracts/interfaces/IERC5267.sol";
import {IConsortiumGuardErrors} from "./IConsortiumGuardErrors.sol";

/**
 * @dev The consortium's membership: who is a member, with which accounts, roles and status.
 * Every other ledger contract asks this registry before it changes state, so suspending a
 * member stops it everywhere at once.
 *
 * Who may change it (see docs/governance.md):
 * - governance: the registry's default admin (OpenZeppelin {AccessControlDefaultAdminRules}), a
 *   `TimelockController` whose only proposer is the governors' M-of-N Safe. Every change below
 *   that says "governance" therefore needs M governor approvals and waits the timelock's delay;
 * - the fast path: holders of {SUSPENDER_ROLE} (a guardian Safe, k-of-n) may suspend, and only
 *   suspend, without delay. Nothing reinstates without governance;
 * - a member itself: its accounts change with an EIP-712 consent signed by one of its current
 *   accounts (and, to add one, a proof of possession signed by the new account);
 * - the bootstrapper: until it seals the bootstrap (once, irreversibly), it may onboard the
 *   founding members, and nothing else.
 *
 * Inherited from {IAccessControlDefaultAdminRules}: `hasRole`, `getRoleAdmin`, `grantRole`,
 * `revokeRole`, `renounceRole`, `defaultAdmin`, `pendingDefaultAdmin`, `defaultAdminDelay`,
 * `pendingDefaultAdminDelay`, `defaultAdminDelayIncreaseWait`, `beginDefaultAdminTransfer`,
 * `cancelDefaultAdminTransfer`, `acceptDefaultAdminTransfer`, `changeDefaultAdminDelay`,
 * `rollbackDefaultAdminDelay`, their errors (`AccessControlUnauthorizedAccount`, ...) and events.
 */
interface IConsortiumRegistry is IAccessControlDefaultAdminRules, IERC5267, IConsortiumGuardErrors {
    /// @dev A member's status: None (never onboarded), Active, Suspended.
    enum MemberStatus {
        None,
        Active,
        Suspended
    }

    /// @dev `id` is not a member.
    /// @param id the member id given
    error RegistryUnknownMember(bytes32 id);
    /// @dev A member with `id` already exists.
    /// @param id the member id given
    error RegistryMemberExists(bytes32 id);
    /// @dev `account` already belongs to member `memberId`.
    /// @param account the account given
    /// @param memberId the member it belongs to
    error RegistryAccountTaken(address account, bytes32 memberId);
    /// @dev `account` is not one of member `id`'s accounts.
    /// @param account the account given
    /// @param id the member given
    error RegistryAccountNotOfMember(address account, bytes32 id);
    /// @dev A member must keep at least one account: add the new one before removing the last.
    /// @param id the member
    error RegistryLastAccount(bytes32 id);
    /// @dev Member `id` would have more than `max` accounts.
    /// @param id the member
    /// @param max {ACCOUNTS_PER_MEMBER_MAX}
    error RegistryTooManyAccounts(bytes32 id, uint256 max);
    /// @dev The zero id, the zero address, an empty list or a list over its bound was given.
    error RegistryInvalidInput();
    /// @dev `country` is not two upper-case ASCII letters (ISO 3166-1 alpha-2).
    /// @param country the country given
    error RegistryInvalidCountry(bytes2 country);
    /// @dev `role` is not one of the member roles this registry knows.
    /// @param role the role given
    error RegistryUnknownRole(bytes32 role);
    /// @dev The member is already in the requested status.
    /// @param id the member
    /// @param status its status, unchanged
    error RegistryStatusUnchanged(bytes32 id, MemberStatus status);
    /// @dev `account` is not the bootstrapper, or the bootstrap is sealed.
    /// @param account the caller
    error RegistryNotBootstrapper(address account);
    /// @dev The consent's `deadline` (unix seconds) has passed.
    /// @param deadline the consent's deadline
    error RegistryConsentExpired(uint256 deadline);
    /// @dev `signer` is not a current account of member `id`, or its consent signature is invalid
    /// (wrong key, wrong data, or a nonce already used).
    /// @param id the member
    /// @param signer the account said to consent
    error RegistryInvalidConsent(bytes32 id, address signer);
    /// @dev The proof that the holder of `account` signed the same typed data is missing or invalid.
    /// @param account the account to add
    error RegistryInvalidPossessionProof(address account);

    /// @dev Member `id` was onboarded, active.
    /// @param id the member
    /// @param country its country
    /// @param roleMask its roles (bit i = i-th role of {ROLE_OPERATOR} .. {ROLE_AUDITOR})
    event MemberOnboarded(bytes32 indexed id, bytes2 country, uint256 roleMask);
    /// @dev `account` now acts for member `id`.
    /// @param id the member
    /// @param account the account added
    event MemberAccountAdded(bytes32 indexed id, address indexed account);
    /// @dev `account` no longer acts for member `id`.
    /// @param id the member
    /// @param account the account removed
    event MemberAccountRemoved(bytes32 indexed id, address indexed account);
    /// @dev Member `id` now holds member role `role`.
    /// @param id the member
    /// @param role the member role
    event MemberRoleGranted(bytes32 indexed id, bytes32 indexed role);
    /// @dev Member `id` no longer holds member role `role`.
    /// @param id the member
    /// @param role the member role
    event MemberRoleRevoked(bytes32 indexed id, bytes32 indexed role);
    /// @dev Member `id`'s country changed.
    /// @param id the member
    /// @param country its new country
    event MemberCountryChanged(bytes32 indexed id, bytes2 country);
    /// @dev Member `id` was suspended: it passes no membership or role check.
    /// @param id the member
    event MemberSuspended(bytes32 indexed id);
    /// @dev Suspended member `id` is active again.
    /// @param id the member
    event MemberReactivated(bytes32 indexed id);
    /// @dev `signer`, an account of member `id`, consented to an account change; `nonce` is now used.
    /// @param id the member
    /// @param signer the consenting account
    /// @param nonce the consent nonce used
    event MemberConsentUsed(bytes32 indexed id, address indexed signer, uint256 nonce);
    /// @dev The bootstrap window closed for good: `bootstrapper` has no power left.
    /// @param bootstrapper the former bootstrapper
    event BootstrapSealed(address indexed bootstrapper);
    /// @dev The Safes whose owners may transact on a permissioned (Besu) network changed.
    /// @param safes the new list of Safes
    event GovernanceSafesChanged(address[] safes);

    // ------------------------------------------------------------------ governance and bootstrap

    /**
     * @dev Onboards member `id` as active, with its country, accounts and member roles.
     *
     * Requirements: caller is governance, or the bootstrapper before {sealBootstrap}; `id` is new
     * and non-zero; 1..{ACCOUNTS_PER_MEMBER_MAX} accounts, none taken; a valid country; known roles.
     *
     * Emits {MemberOnboarded}, one {MemberAccountAdded} per account and one {MemberRoleGranted} per role.
     *
     * @param id the member's id
     * @param country ISO 3166-1 alpha-2 country, upper case
     * @param accounts the member's first accounts
     * @param roles member roles ({ROLE_OPERATOR} .. {ROLE_AUDITOR})
     */
    function onboardMember(bytes32 id, bytes2 country, address[] calldata accounts, bytes32[] calldata roles)
        external;

    /**
     * @dev Ends the bootstrap for good: the bootstrapper loses the power to onboard and to transact
     * on a permissioned network. Deployment calls it once the founding members are onboarded.
     *
     * Requirements: caller is the bootstrapper, not yet sealed. Emits {BootstrapSealed}.
     */
    function sealBootstrap() external;

    /**
     * @dev Adds `account` to member `id` by governance (e.g. a member that lost all its keys).
     *
     * Requirements: caller is governance; the member exists; the account is free; the member has
     * fewer than {ACCOUNTS_PER_MEMBER_MAX} accounts. Emits {MemberAccountAdded}.
     *
     * @param id the member
     * @param account the account to add
     */
    function addAccount(bytes32 id, address account) external;

    /**
     * @dev Removes `account` from member `id` by governance; the account can no longer act for it.
     *
     * Requirements: caller is governance; the account belongs to the member; it is not the
     * member's last account. Emits {MemberAccountRemoved}.
     *
     * @param id the member
     * @param account the account to remove
     */
    function removeAccount(bytes32 id, address account) external;

    /**
     * @dev Grants member role `role` to member `id` (no-op if held).
     *
     * Requirements: caller is governance; the member exists; the role is known.
     * Emits {MemberRoleGranted} when the role was not held.
     *
     * @param id the member
     * @param role the member role
     */
    function grantMemberRole(bytes32 id, bytes32 role) external;

    /**
     * @dev Revokes member role `role` from member `id` (no-op if not held).
     *
     * Requirements: caller is governance; the member exists; the role is known.
     * Emits {MemberRoleRevoked} when the role was held.
     *
     * @param id the member
     * @param role the member role
     */
    function revokeMemberRole(bytes32 id, bytes32 role) external;

    /**
     * @dev Changes member `id`'s country.
     *
     * Requirements: caller is governance; the member exists; a valid country. Emits {MemberCountryChanged}.
     *
     * @param id the member
     * @param country ISO 3166-1 alpha-2 country, upper case
     */
    function setCountry(bytes32 id, bytes2 country) external;

    /**
     * @dev Suspends member `id`: none of its accounts passes any membership or role check (in
     * every ledger contract) nor, on Besu, may transact, until governance reactivates it.
     *
     * Requirements: caller is governance (slow path) or holds {SUSPENDER_ROLE} (fast path, no
     * delay); the member is active. Emits {MemberSuspended}.
     *
     * @param id the member
     */
    function suspendMember(bytes32 id) external;

    /**
     * @dev Reactivates suspended member `id`. There is no fast path: only governance, after its delay.
     *
     * Requirements: caller is governance; the member is suspended. Emits {MemberReactivated}.
     *
     * @param id the member
     */
    function reactivateMember(bytes32 id) external;

    /**
     * @dev Replaces the Safes whose owners (the governors) may transact on a permissioned
     * network ({transactionAllowed}); the Safes and the timelock themselves never send transactions.
     *
     * Requirements: caller is governance; at most {GOVERNANCE_SAFES_MAX} contracts. Emits {GovernanceSafesChanged}.
     *
     * @param safes the governance and guardian Safes
     */
    function setGovernanceSafes(address[] calldata safes) external;

    // ------------------------------------------------------------------ a member's own consent

    /**
     * @dev Adds `account` to member `id` with the member's consent: `signer`, a current account
     * of the active member, signed the EIP-712 typed data
     * `AddAccount(bytes32 memberId,address account,address signer,uint256 nonce,uint256 deadline)`
     * with `nonce = nonces(signer)`, and `account` signed the same typed data (proof of possession:
     * the new key agrees to act for this member). Anyone may submit it (e.g. the service's relayer).
     * Signatures are ECDSA for accounts without code, ERC-1271 for contract accounts.
     *
     * Requirements: `deadline` not passed; `signer` is an account of `id`; the member is active;
     * both signatures valid; the account is free; fewer than {ACCOUNTS_PER_MEMBER_MAX} accounts.
     *
     * Emits {MemberConsentUsed} and {MemberAccountAdded}.
     *
     * @param id the member
     * @param account the account to add
     * @param signer the member's current account that consents
     * @param deadline unix seconds after which the consent is void
     * @param consentSignature `signer`'s signature
     * @param possessionSignature `account`'s signature over the same typed data
     */
    function addAccountWithConsent(
        bytes32 id,
        address account,
        address signer,
        uint256 deadline,
        bytes calldata consentSignature,
        bytes calldata possessionSignature
    ) external;

    /**
     * @dev Removes `account` from member `id` with the member's consent: `signer`, a current
     * account of the active member (possibly `account` itself), signed the EIP-712 typed data
     * `RemoveAccount(bytes32 memberId,address account,address signer,uint256 nonce,uint256 deadline)`
     * with `nonce = nonces(signer)`. A member can never remove its last account (rotate by adding
     * the new key first), so no signature can lock a member out of its own membership.
     *
     * Requirements: `deadline` not passed; `signer` is an account of `id`; the member is active;
     * the signature is valid; `account` belongs to `id` and is not its last account.
     *
     * Emits {MemberConsentUsed} and {MemberAccountRemoved}.
     *
     * @param id the member
     * @param account the account to remove
     * @param signer the member's current account that consents
     * @param deadline unix seconds after which the consent is void
     * @param consentSignature `signer`'s signature
     */
    function removeAccountWithConsent(
        bytes32 id,
        address account,
        address signer,
        uint256 deadline,
        bytes calldata consentSignature
    ) external;

    // ------------------------------------------------------------------ views

    /// @dev The account that may onboard founding members until {sealBootstrap}; zero once sealed.
    /// @return the bootstrapper, or zero
    function bootstrapper() external view returns (address);

    /// @dev The Safes whose owners may transact on a permissioned network.
    /// @return the governance and guardian Safes
    function governanceSafes() external view returns (address[] memory);

    /// @dev The next consent nonce of `signer` (each consent uses one).
    /// @param signer a member account
    /// @return the nonce to sign
    function nonces(address signer) external view returns (uint256);

    /// @dev The member id of `account`, or zero.
    /// @param account any address
    /// @return the member id, or zero
    function memberOf(address account) external view returns (bytes32);

    /**
     * @dev Member `id`: status, country, role bit mask (bit i = i-th role of {ROLE_OPERATOR} ..
     * {ROLE_AUDITOR}) and accounts.
     * @param id the member
     * @return status its status
     * @return country its country
     * @return roleMask its roles
     * @return accounts its accounts
     */
    function getMember(bytes32 id)
        external
        view
        returns (MemberStatus status, bytes2 country, uint256 roleMask, address[] memory accounts);

    /// @dev The number of members ever onboarded.
    /// @return the count
    function memberCount() external view returns (uint256);

    /// @dev The id of the `index`-th member onboarded.
    /// @param index from 0 to {memberCount} - 1
    /// @return the member id
    function memberIdAt(uint256 index) external view returns (bytes32);

    /// @dev Whether `account` belongs to an active member holding `role`.
    /// @param account any address
    /// @param role a member role
    /// @return whether it does
    function isActiveWithRole(address account, bytes32 role) external view returns (bool);

    /**
     * @dev Returns the member id of `account`. Reverts unless the account belongs to an active
     * member holding `role` (with {RegistryNotAMember}, {RegistryMemberNotActive} or
     * {RegistryMissingRole}).
     * @param account the acting party
     * @param role the member role it needs
     * @return the member id
     */
    function requireActiveRole(address account, bytes32 role) external view returns (bytes32);

    /// @dev Returns the member id of `account`; reverts unless it is an active member.
    /// @param account the acting party
    /// @return the member id
    function requireActiveMember(address account) external view returns (bytes32);

    /// @dev Whether member `id` is active.
    /// @param id the member
    /// @return whether it is
    function isActive(bytes32 id) external view returns (bool);

    /// @dev Whether member `id` holds member role `role` (whatever its status).
    /// @param id the member
    /// @param role the member role
    /// @return whether it does
    function memberHasRole(bytes32 id, bytes32 role) external view returns (bool);

    /**
     * @dev Besu account permissioning (`permissions-accounts-contract`, Besu <= 25.5): a
     * transaction is allowed when its sender is an account of an active member, an owner of one
     * of the {governanceSafes} (a governor), a holder of the default admin or {SUSPENDER_ROLE},
     * or the bootstrapper before the seal.
     * @param sender the transaction's sender
     * @return whether it may transact
     */
    function transactionAllowed(address sender, address, uint256, uint256, uint256, bytes calldata)
        external
        view
        returns (bool);

    /// @dev Member role of the ledger's operator.
    /// @return keccak256("OPERATOR")
    function ROLE_OPERATOR() external view returns (bytes32);

    /// @dev Member role of finance teams (settlements).
    /// @return keccak256("FINANCE")
    function ROLE_FINANCE() external view returns (bytes32);

    /// @dev Member role of suppliers (receivables).
    /// @return keccak256("SUPPLIER")
    function ROLE_SUPPLIER() external view returns (bytes32);

    /// @dev Member role of buyers (receivables).
    /// @return keccak256("BUYER")
    function ROLE_BUYER() external view returns (bytes32);

    /// @dev Member role of financiers (receivables).
    /// @return keccak256("FINANCIER")
    function ROLE_FINANCIER() external view returns (bytes32);

    /// @dev Member role of auditors.
    /// @return keccak256("AUDITOR")
    function ROLE_AUDITOR() external view returns (bytes32);

    /// @dev The role of the fast-path suspenders (the guardian Safe).
    /// @return keccak256("SUSPENDER")
    function SUSPENDER_ROLE() external view returns (bytes32);

    /// @dev EIP-712 type hash of the add-account consent.
    /// @return the type hash
    function ADD_ACCOUNT_TYPEHASH() external view returns (bytes32);

    /// @dev EIP-712 type hash of the remove-account consent.
    /// @return the type hash
    function REMOVE_ACCOUNT_TYPEHASH() external view returns (bytes32);

    /// @dev The most accounts one member may have.
    /// @return the bound
    function ACCOUNTS_PER_MEMBER_MAX() external view returns (uint256);

    /// @dev The most Safes {setGovernanceSafes} accepts.
    /// @return the bound
    function GOVERNANCE_SAFES_MAX() external view returns (uint256);
}
