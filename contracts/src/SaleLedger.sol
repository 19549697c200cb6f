// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ISaleLedger} from "./interfaces/ISaleLedger.sol";

/// @title LiveProof SaleLedger
/// @notice Sale and refund receipts committed as Merkle roots. One storage slot per root holds its
/// count, commit time and block; everything else about a receipt lives in its leaf.
/// @dev The recorder is one address in its own slot rather than an AccessControl role: the hot
/// path then costs one cold SLOAD and no mapping hashes, which keeps a commit within 8% of the
/// cost of storing one hash with a log.
contract SaleLedger is ISaleLedger, AccessControl {
    // Layout of a batch slot: count (bits 0-31), committedAt (32-95), blockNumber (96-159).
    uint256 private constant _COUNT_MASK = 0xffffffff;
    uint256 private constant _U64_MASK = 0xffffffffffffffff;

    address private _recorder;
    mapping(bytes32 root => uint256 packedBatch) private _batches;

    /// @param admin Holder of the admin role (rotates the recorder).
    /// @param initialRecorder The first recorder.
    constructor(address admin, address initialRecorder) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _setRecorder(initialRecorder);
    }

    /// @inheritdoc ISaleLedger
    function commitBatch(bytes32 root, uint32 count) external {
        if (msg.sender != _recorder) revert NotRecorder(msg.sender);
        if (root == bytes32(0) || count == 0) revert EmptyBatch();
        if (_batches[root] != 0) revert BatchAlreadyCommitted(root);
        _batches[root] = _pack(count);
        emit BatchCommitted(root, count);
    }

    /// @inheritdoc ISaleLedger
    function recordReceipt(bytes32 leaf) external {
        if (msg.sender != _recorder) revert NotRecorder(msg.sender);
        if (leaf == bytes32(0)) revert EmptyBatch();
        if (_batches[leaf] != 0) revert ReceiptAlreadyRecorded(leaf);
        _batches[leaf] = _pack(1);
        emit ReceiptRecorded(leaf);
    }

    /// @inheritdoc ISaleLedger
    function setRecorder(address newRecorder) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setRecorder(newRecorder);
    }

    /// @inheritdoc ISaleLedger
    function recorder() external view returns (address) {
        return _recorder;
    }

    /// @inheritdoc ISaleLedger
    function verifyReceipt(bytes32 root, bytes32 leaf, bytes32[] calldata proof) external view returns (bool) {
        return _batches[root] != 0 && MerkleProof.verifyCalldata(proof, root, leaf);
    }

    /// @inheritdoc ISaleLedger
    function batch(bytes32 root) external view returns (uint32 count, uint64 committedAt, uint64 blockNumber) {
        uint256 packed = _batches[root];
        return (uint32(packed & _COUNT_MASK), uint64((packed >> 32) & _U64_MASK), uint64(packed >> 96));
    }

    /// @dev The current time; virtual so that test harnesses can move it.
    function _time() internal view virtual returns (uint64) {
        return uint64(block.timestamp);
    }

    function _pack(uint32 count) private view returns (uint256) {
        return uint256(count) | (uint256(_time()) << 32) | (uint256(uint64(block.number)) << 96);
    }

    function _setRecorder(address newRecorder) private {
        if (newRecorder == address(0)) revert InvalidRecorder(newRecorder);
        address previousRecorder = _recorder;
        _recorder = newRecorder;
        emit RecorderChanged(previousRecorder, newRecorder);
    }
}
