// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IAnchorRegistry} from "../src/interfaces/IAnchorRegistry.sol";

/// @title Test-only registry that emits AnchorRegistry's events with no checks at all
/// @notice What a buggy or dishonest registry could log: an endorsement by an account that was
/// never a registered anchor. Auditor tests point a deployment file's "AnchorRegistry" here to
/// see `liveproof audit chain` catch it. Not deployed by `liveproof deploy`.
contract ForgedAnchorRegistry {
    event AnchorRegistered(address indexed anchor, bytes32 indexed handleHash, string handle);
    event AnchorRemoved(address indexed anchor, bytes32 indexed handleHash);
    event EndorsementRecorded(
        bytes32 indexed endorsementId,
        address indexed anchor,
        bytes32 indexed productId,
        IAnchorRegistry.EndorsementTerms terms,
        uint256 nonce
    );
    event SessionOpened(bytes32 indexed sessionId, bytes32 indexed roomId, address indexed anchor, uint64 openedAt);

    /// @notice Log that `anchor` is registered under `handle`.
    function registerAnchor(address anchor, string calldata handle) external {
        emit AnchorRegistered(anchor, keccak256(bytes(handle)), handle);
    }

    /// @notice Log that `anchor` (registered under `handle`) is removed.
    function removeAnchor(address anchor, string calldata handle) external {
        emit AnchorRemoved(anchor, keccak256(bytes(handle)));
    }

    /// @notice Log an endorsement by `anchor`, registered or not.
    function endorseAs(address anchor, bytes32 endorsementId, IAnchorRegistry.EndorsementTerms calldata terms)
        external
    {
        emit EndorsementRecorded(endorsementId, anchor, terms.productId, terms, 0);
    }

    /// @notice Log a session opening.
    function openSession(bytes32 sessionId, bytes32 roomId, address anchor) external {
        emit SessionOpened(sessionId, roomId, anchor, uint64(block.timestamp));
    }
}
