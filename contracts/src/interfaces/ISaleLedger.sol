// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title Sale and refund receipts, committed as Merkle batches or singly
/// @notice A batch is identified by its Merkle root (an OpenZeppelin StandardMerkleTree of receipt
/// leaves); a single receipt is a batch of one whose root is its leaf. Only the recorder may
/// commit, and the admin rotates the recorder; a root is accepted once. The commit time and block
/// of a batch are those of the block that holds its event.
interface ISaleLedger {
    /// @notice `account` is not the recorder.
    error NotRecorder(address account);
    /// @notice The recorder cannot be the zero address.
    error InvalidRecorder(address account);
    /// @notice This root was already committed.
    error BatchAlreadyCommitted(bytes32 root);
    /// @notice This receipt leaf was already recorded.
    error ReceiptAlreadyRecorded(bytes32 leaf);
    /// @notice A zero root or leaf, or an empty batch.
    error EmptyBatch();

    /// @notice The admin handed the recorder duty from `previousRecorder` to `newRecorder`.
    event RecorderChanged(address indexed previousRecorder, address indexed newRecorder);
    /// @notice The recorder committed a batch of `count` receipts with Merkle root `root`.
    event BatchCommitted(bytes32 indexed root, uint32 count);
    /// @notice The recorder recorded one receipt leaf on its own.
    event ReceiptRecorded(bytes32 indexed leaf);

    /// @notice Commit a batch of `count` receipts (recorder only).
    function commitBatch(bytes32 root, uint32 count) external;

    /// @notice Record a single receipt leaf at once (recorder only).
    function recordReceipt(bytes32 leaf) external;

    /// @notice Hand the recorder duty to `newRecorder` (admin only).
    function setRecorder(address newRecorder) external;

    /// @notice The account allowed to commit receipts.
    function recorder() external view returns (address);

    /// @notice True when `root` is committed and `proof` folds `leaf` into it.
    function verifyReceipt(bytes32 root, bytes32 leaf, bytes32[] calldata proof) external view returns (bool);

    /// @notice A batch's receipt count, commit time and block (count zero: not committed).
    function batch(bytes32 root) external view returns (uint32 count, uint64 committedAt, uint64 blockNumber);
}
