// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title Test-only EIP-1271 contract wallet
/// @notice Accepts signatures by its owner key while `accepting` is true; lets tests check that
/// the registries honour a contract wallet's answer either way. Not deployed by `liveproof deploy`.
contract MockERC1271Wallet is IERC1271 {
    address public immutable owner;
    bool public accepting = true;

    constructor(address owner_) {
        owner = owner_;
    }

    /// @notice Switch between accepting and rejecting every signature.
    function setAccepting(bool accepting_) external {
        require(msg.sender == owner, "not owner");
        accepting = accepting_;
    }

    /// @notice Forward a call from the wallet (so the wallet can act directly as a participant).
    function execute(address target, bytes calldata data) external returns (bytes memory) {
        require(msg.sender == owner, "not owner");
        (bool ok, bytes memory result) = target.call(data);
        if (!ok) {
            assembly {
                revert(add(result, 32), mload(result))
            }
        }
        return result;
    }

    /// @inheritdoc IERC1271
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(hash, signature);
        if (accepting && err == ECDSA.RecoverError.NoError && signer == owner) {
            return IERC1271.isValidSignature.selector;
        }
        return 0xffffffff;
    }
}
