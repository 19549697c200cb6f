// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title Relayed EIP-712 actions shared by the LiveProof registries
/// @notice Every participant action can be sent directly or signed with EIP-712 and relayed by
/// anyone. A signature is bound to this contract, this chain, a deadline and the signer's next
/// nonce (`nonces(account)`, from OpenZeppelin's `Nonces`); EIP-1271 contract wallets are accepted.
interface ISignedActions {
    /// @notice The signature's deadline has passed.
    error SignatureExpired(uint64 deadline);
    /// @notice The signature is not a valid signature of `signer` over the typed data.
    error InvalidSignature(address signer);

    /// @notice `account` consumed nonce `nonce`, cancelling every signature that carries it.
    event NonceCancelled(address indexed account, uint256 nonce);

    /// @notice Consume the caller's current nonce so that any signature carrying it is void.
    /// @return nonce The nonce that was cancelled.
    function increaseNonce() external returns (uint256 nonce);

    /// @notice Relayed form of {increaseNonce}: `account` signed `CancelNonce(account, nonce, deadline)`.
    function increaseNonceBySig(address account, uint256 nonce, uint64 deadline, bytes calldata signature)
        external;
}
