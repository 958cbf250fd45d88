// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {IOwnerManager} from "@safe-global/safe-smart-account/contracts/interfaces/IOwnerManager.sol";
import {IConsortiumRegistry} from "./IConsortiumRegistry.sol";

/**
 * @dev Consortium membership, governed by the consortium (see {IConsortiumRegistry} and
 * docs/governance.md). A member has an id, a country, one or more accounts, a set of member roles
 * and a status.
 *
 * Power is split on purpose:
 * - the default admin (OpenZeppelin {AccessControlDefaultAdminRules}: one holder, transferred in
 *   two steps with a delay, never renounced at once) is the governance timelock; every admin
 *   function is `onlyRole(DEFAULT_ADMIN_ROLE)`, so it runs only as a scheduled, delayed timelock
 *   operation approved by M governors;
 * - {SUSPENDER_ROLE} (the guardian Safe) may only suspend;
 * - a member's accounts also change with its own EIP-712 consent ({addAccountWithConsent},
 *   {removeAccountWithConsent}), and nobody else's;
 * - the bootstrapper may only onboard, and only until it seals the bootstrap.
 *
 * It also answers Hyperledger Besu's (<= 25.5) on-chain account permissioning call
 * {transactionAllowed}.
 */
contract ConsortiumRegistry is AccessControlDefaultAdminRules, EIP712, Nonces, IConsortiumRegistry {
    bytes32 public constant ROLE_OPERATOR = keccak256("OPERATOR");
    bytes32 public constant ROLE_FINANCE = keccak256("FINANCE");
    bytes32 public constant ROLE_SUPPLIER = keccak256("SUPPLIER");
    bytes32 public constant ROLE_BUYER = keccak256("BUYER");
    bytes32 public constant ROLE_FINANCIER = keccak256("FINANCIER");
    bytes32 public constant ROLE_AUDITOR = keccak256("AUDITOR");

    bytes32 public constant SUSPENDER_ROLE = keccak256("SUSPENDER");

    bytes32 public constant ADD_ACCOUNT_TYPEHASH =
        keccak256("AddAccount(bytes32 memberId,address account,address signer,uint256 nonce,uint256 deadline)");
    bytes32 public constant REMOVE_ACCOUNT_TYPEHASH =
        keccak256("RemoveAccount(bytes32 memberId,address account,address signer,uint256 nonce,uint256 deadline)");

    /// @dev Bounds the accounts of one member, so that no loop over them is unbounded.
    uint256 public constant ACCOUNTS_PER_MEMBER_MAX = 16;
    /// @dev Bounds the Safes asked in {transactionAllowed}, which Besu calls for every transaction.
    uint256 public constant GOVERNANCE_SAFES_MAX = 4;
    /// @dev Bounds the member roles given at onboarding (there are six).
    uint256 private constant ROLES_PER_MEMBER_MAX = 6;

    struct Member {
        MemberStatus status;
        bytes2 country;
        uint256 roleMask;
        address[] accounts;
    }

    mapping(bytes32 id => Member) private _members;
    mapping(address account => bytes32 id) private _memberOf;
    bytes32[] private _memberIds;
    address private _bootstrapper;
    address[] private _governanceSafes;

    /**
     * @param governance the default admin: the governance `TimelockController`
     * @param adminTransferDelay the wait (seconds) before a new default admin may accept the role
     *        (and before a renounce takes effect), on top of the timelock's own delay
     * @param guardian granted {SUSPENDER_ROLE} (the guardian Safe), or zero for none
     * @param bootstrapper_ may onboard founding members until {sealBootstrap}; zero for no bootstrap
     * @param governanceSafes_ the Safes whose owners may transact on a permissioned network
     */
    constructor(
        address governance,
        uint48 adminTransferDelay,
        address guardian,
        address bootstrapper_,
        address[] memory governanceSafes_
    ) AccessControlDefaultAdminRules(adminTransferDelay, governance) EIP712("ConsortiumRegistry", "1") {
        if (guardian != address(0)) _grantRole(SUSPENDER_ROLE, guardian);
        _bootstrapper = bootstrapper_;
        _setGovernanceSafes(governanceSafes_);
    }

    /// @inheritdoc IConsortiumRegistry
    function onboardMember(bytes32 id, bytes2 country, address[] calldata accounts, bytes32[] calldata roles)
        external
    {
        address caller = _msgSender();
        if (!(caller == _bootstrapper && caller != address(0))) _checkRole(DEFAULT_ADMIN_ROLE, caller);
        if (id == bytes32(0) || accounts.length == 0 || roles.length > ROLES_PER_MEMBER_MAX) {
            revert RegistryInvalidInput();
        }
        if (accounts.length > ACCOUNTS_PER_MEMBER_MAX) revert RegistryTooManyAccounts(id, ACCOUNTS_PER_MEMBER_MAX);
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

    /// @inheritdoc IConsortiumRegistry
    function sealBootstrap() external {
        address caller = _msgSender();
        if (caller != _bootstrapper || caller == address(0)) revert RegistryNotBootstrapper(caller);
        _bootstrapper = address(0);
        emit BootstrapSealed(caller);
    }

    /// @inheritdoc IConsortiumRegistry
    function addAccount(bytes32 id, address account) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireExists(id);
        _addAccount(id, account);
    }

    /// @inheritdoc IConsortiumRegistry
    function removeAccount(bytes32 id, address account) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireExists(id);
        _removeAccount(id, account);
    }

    /// @inheritdoc IConsortiumRegistry
    function grantMemberRole(bytes32 id, bytes32 role) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireExists(id);
        uint256 bit = _roleBit(role);
        if (_members[id].roleMask & bit == 0) {
            _members[id].roleMask |= bit;
            emit MemberRoleGranted(id, role);
        }
    }

    /// @inheritdoc IConsortiumRegistry
    function revokeMemberRole(bytes32 id, bytes32 role) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireExists(id);
        uint256 bit = _roleBit(role);
        if (_members[id].roleMask & bit != 0) {
            _members[id].roleMask &= ~bit;
            emit MemberRoleRevoked(id, role);
        }
    }

    /// @inheritdoc IConsortiumRegistry
    function setCountry(bytes32 id, bytes2 country) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireExists(id);
        _checkCountry(country);
        _members[id].country = country;
        emit MemberCountryChanged(id, country);
    }

    /// @inheritdoc IConsortiumRegistry
    function suspendMember(bytes32 id) external {
        // The fast path: a suspension can only stop a member, so k guardians may do it at once;
        // governance may too (slowly). Undoing it is {reactivateMember}, governance only.
        address caller = _msgSender();
        if (!hasRole(SUSPENDER_ROLE, caller)) _checkRole(DEFAULT_ADMIN_ROLE, caller);
        _requireExists(id);
        if (_members[id].status != MemberStatus.Active) revert RegistryStatusUnchanged(id, MemberStatus.Suspended);
        _members[id].status = MemberStatus.Suspended;
        emit MemberSuspended(id);
    }

    /// @inheritdoc IConsortiumRegistry
    function reactivateMember(bytes32 id) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireExists(id);
        if (_members[id].status != MemberStatus.Suspended) revert RegistryStatusUnchanged(id, MemberStatus.Active);
        _members[id].status = MemberStatus.Active;
        emit MemberReactivated(id);
    }

    /// @inheritdoc IConsortiumRegistry
    function setGovernanceSafes(address[] calldata safes) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setGovernanceSafes(safes);
    }

    /// @inheritdoc IConsortiumRegistry
    function addAccountWithConsent(
        bytes32 id,
        address account,
        address signer,
        uint256 deadline,
        bytes calldata consentSignature,
        bytes calldata possessionSignature
    ) external {
        bytes32 digest = _useConsent(ADD_ACCOUNT_TYPEHASH, id, account, signer, deadline, consentSignature);
        // The new key signs the very same typed data: it proves the key exists and is held by
        // someone who agrees to act for this member, so no one binds a stranger's address to it.
        if (!_isValidSignatureNow(account, digest, possessionSignature)) {
            revert RegistryInvalidPossessionProof(account);
        }
        _addAccount(id, account);
    }

    /// @inheritdoc IConsortiumRegistry
    function removeAccountWithConsent(
        bytes32 id,
        address account,
        address signer,
        uint256 deadline,
        bytes calldata consentSignature
    ) external {
        _useConsent(REMOVE_ACCOUNT_TYPEHASH, id, account, signer, deadline, consentSignature);
        _removeAccount(id, account);
    }

    /// @inheritdoc IConsortiumRegistry
    function bootstrapper() external view returns (address) {
        return _bootstrapper;
    }

    /// @inheritdoc IConsortiumRegistry
    function governanceSafes() external view returns (address[] memory) {
        return _governanceSafes;
    }

    /// @inheritdoc IConsortiumRegistry
    function nonces(address signer) public view override(Nonces, IConsortiumRegistry) returns (uint256) {
        return super.nonces(signer);
    }

    /// @inheritdoc IConsortiumRegistry
    function memberOf(address account) external view returns (bytes32) {
        return _memberOf[account];
    }

    /// @inheritdoc IConsortiumRegistry
    function getMember(bytes32 id)
        external
        view
        returns (MemberStatus status, bytes2 country, uint256 roleMask, address[] memory accounts)
    {
        Member storage m = _members[id];
        return (m.status, m.country, m.roleMask, m.accounts);
    }

    /// @inheritdoc IConsortiumRegistry
    function memberCount() external view returns (uint256) {
        return _memberIds.length;
    }

    /// @inheritdoc IConsortiumRegistry
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

    /// @inheritdoc IConsortiumRegistry
    function transactionAllowed(address sender, address, uint256, uint256, uint256, bytes calldata)
        external
        view
        returns (bool)
    {
        bytes32 id = _memberOf[sender];
        if (id != bytes32(0)) return isActive(id);
        if (sender == _bootstrapper && sender != address(0)) return true;
        if (hasRole(DEFAULT_ADMIN_ROLE, sender) || hasRole(SUSPENDER_ROLE, sender)) return true;
        address[] storage safes = _governanceSafes;
        for (uint256 i = 0; i < safes.length; ++i) {
            if (IOwnerManager(safes[i]).isOwner(sender)) return true;
        }
        return false;
    }

    /**
     * @dev Checks a member's consent to an account change and uses the signer's nonce; returns
     * the EIP-712 digest (for the possession proof). Reverts with {RegistryConsentExpired},
     * {RegistryInvalidConsent} or {RegistryMemberNotActive}.
     */
    function _useConsent(
        bytes32 typeHash,
        bytes32 id,
        address account,
        address signer,
        uint256 deadline,
        bytes calldata signature
    ) private returns (bytes32 digest) {
        if (block.timestamp > deadline) revert RegistryConsentExpired(deadline);
        if (signer == address(0) || _memberOf[signer] != id) revert RegistryInvalidConsent(id, signer);
        // A suspended member may be compromised or insolvent: its keys change only by governance.
        if (!isActive(id)) revert RegistryMemberNotActive(signer, id);
        uint256 nonce = _useNonce(signer);
        digest = _hashTypedDataV4(keccak256(abi.encode(typeHash, id, account, signer, nonce, deadline)));
        if (!_isValidSignatureNow(signer, digest, signature)) revert RegistryInvalidConsent(id, signer);
        emit MemberConsentUsed(id, signer, nonce);
    }

    /**
     * @dev OpenZeppelin 5.4's `SignatureChecker.isValidSignatureNow`, line for line: ECDSA for
     * accounts without code, ERC-1271 for contract accounts (e.g. a member's own Safe). Not
     * imported because SignatureChecker 5.4 also pulls in `Bytes` (ERC-7913), whose MCOPY does not
     * exist on the London EVM this ledger targets.
     */
    function _isValidSignatureNow(address signer, bytes32 hash, bytes calldata signature)
        private
        view
        returns (bool)
    {
        if (signer.code.length == 0) {
            (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature);
            return err == ECDSA.RecoverError.NoError && recovered == signer;
        }
        (bool success, bytes memory result) =
            signer.staticcall(abi.encodeCall(IERC1271.isValidSignature, (hash, signature)));
        return success && result.length >= 32
            && abi.decode(result, (bytes32)) == bytes32(IERC1271.isValidSignature.selector);
    }

    function _addAccount(bytes32 id, address account) private {
        if (account == address(0)) revert RegistryInvalidInput();
        bytes32 owner = _memberOf[account];
        if (owner != bytes32(0)) revert RegistryAccountTaken(account, owner);
        address[] storage accounts = _members[id].accounts;
        if (accounts.length >= ACCOUNTS_PER_MEMBER_MAX) revert RegistryTooManyAccounts(id, ACCOUNTS_PER_MEMBER_MAX);
        _memberOf[account] = id;
        accounts.push(account);
        emit MemberAccountAdded(id, account);
    }

    function _removeAccount(bytes32 id, address account) private {
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

    function _setGovernanceSafes(address[] memory safes) private {
        if (safes.length > GOVERNANCE_SAFES_MAX) revert RegistryInvalidInput();
        for (uint256 i = 0; i < safes.length; ++i) {
            // {transactionAllowed} calls each one: an address without code would make it revert.
            if (safes[i].code.length == 0) revert RegistryInvalidInput();
        }
        _governanceSafes = safes;
        emit GovernanceSafesChanged(safes);
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
