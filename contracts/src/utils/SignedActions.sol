// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {ISignedActions} from "../interfaces/ISignedActions.sol";

/// @dev EIP-712 domain, per-account sequential nonces and signature checks (EOA or EIP-1271)
/// shared by the registries. High-s and malformed ECDSA signatures are rejected by
/// OpenZeppelin's ECDSA, so every signature has exactly one valid form.
abstract contract SignedActions is ISignedActions, EIP712, Nonces {
    /// @dev keccak256("CancelNonce(address account,uint256 nonce,uint64 deadline)")
    bytes32 internal constant CANCEL_NONCE_TYPEHASH =
        keccak256("CancelNonce(address account,uint256 nonce,uint64 deadline)");

    constructor(string memory name, string memory version) EIP712(name, version) {}

    /// @inheritdoc ISignedActions
    function increaseNonce() external returns (uint256 nonce) {
        nonce = _useNonce(msg.sender);
        emit NonceCancelled(msg.sender, nonce);
    }

    /// @inheritdoc ISignedActions
    function increaseNonceBySig(address account, uint256 nonce, uint64 deadline, bytes calldata signature)
        external
    {
        _useSignature(account, keccak256(abi.encode(CANCEL_NONCE_TYPEHASH, account, nonce, deadline)), nonce, deadline, signature);
        emit NonceCancelled(account, nonce);
    }

    /// @notice The EIP-712 domain separator of this contract on this chain.
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @dev Check deadline and signature of `signer` over `structHash`, then consume `nonce`.
    /// The nonce is part of `structHash`, so a replay fails the nonce check with
    /// `InvalidAccountNonce`.
    function _useSignature(
        address signer,
        bytes32 structHash,
        uint256 nonce,
        uint64 deadline,
        bytes calldata signature
    ) internal {
        if (_time() > deadline) revert SignatureExpired(deadline);
        if (!SignatureChecker.isValidSignatureNowCalldata(signer, _hashTypedDataV4(structHash), signature)) {
            revert InvalidSignature(signer);
        }
        _useCheckedNonce(signer, nonce);
    }

    /// @dev The current time; virtual so that test harnesses can move it.
    function _time() internal view virtual returns (uint64) {
        return uint64(block.timestamp);
    }
}
