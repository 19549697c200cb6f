// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ISignedActions} from "./ISignedActions.sol";

/// @title Anchors (live-stream hosts), their endorsements and their live sessions
/// @notice The admin registers anchors by platform handle. An anchor endorses a product's claims
/// for a room with a disclosure (sponsored, commission) and a promised unit price, signed with
/// EIP-712 and relayed, or sent directly; the anchor can revoke. Sessions are opened and closed
/// by the platform's operator (or the anchor), the close carrying the recording hash and the
/// sales count that was displayed to viewers.
interface IAnchorRegistry is ISignedActions {
    /// @notice What an anchor endorses. `claimsDigest` is the hash of the claim ids the anchor
    /// reviewed; `commissionBps` is the anchor's commission in basis points; `unitPrice` is the
    /// promised price in minor units of `currency` (ISO 4217); valid in [validFrom, validUntil).
    struct EndorsementTerms {
        bytes32 productId;
        bytes32 claimsDigest;
        bytes32 roomId;
        bool sponsored;
        uint16 commissionBps;
        uint256 unitPrice;
        bytes3 currency;
        uint64 validFrom;
        uint64 validUntil;
    }

    /// @notice `account` is not a registered anchor.
    error NotAnchor(address account);
    /// @notice `account` is already registered.
    error AnchorAlreadyRegistered(address account);
    /// @notice Another anchor holds this handle.
    error HandleTaken(bytes32 handleHash);
    /// @notice The endorsement's validity window is empty.
    error InvalidValidityWindow(uint64 validFrom, uint64 validUntil);
    /// @notice The endorsement would already be expired when recorded.
    error EndorsementExpired(uint64 validUntil);
    /// @notice Commission above 100%.
    error InvalidCommission(uint16 commissionBps);
    /// @notice The product is not registered in the ProvenanceRegistry.
    error UnknownProduct(bytes32 productId);
    /// @notice No endorsement has this id.
    error UnknownEndorsement(bytes32 endorsementId);
    /// @notice `account` is not the anchor who made this endorsement.
    error NotEndorser(bytes32 endorsementId, address account);
    /// @notice The endorsement was already revoked.
    error EndorsementAlreadyRevoked(bytes32 endorsementId);
    /// @notice A session with this id exists.
    error SessionAlreadyExists(bytes32 sessionId);
    /// @notice No session has this id.
    error UnknownSession(bytes32 sessionId);
    /// @notice The session was already closed.
    error SessionAlreadyClosed(bytes32 sessionId);
    /// @notice `account` may not open or close this session.
    error NotSessionManager(bytes32 sessionId, address account);

    /// @notice The admin registered `anchor` with platform handle `handle`.
    event AnchorRegistered(address indexed anchor, bytes32 indexed handleHash, string handle);
    /// @notice The admin removed `anchor`; its endorsements stay on record.
    event AnchorRemoved(address indexed anchor, bytes32 indexed handleHash);
    /// @notice `anchor` endorsed `productId` on these terms with nonce `nonce`.
    event EndorsementRecorded(
        bytes32 indexed endorsementId, address indexed anchor, bytes32 indexed productId, EndorsementTerms terms, uint256 nonce
    );
    /// @notice `anchor` revoked an endorsement.
    event EndorsementRevoked(bytes32 indexed endorsementId, address indexed anchor, uint64 revokedAt);
    /// @notice A live session started in `roomId` hosted by `anchor`.
    event SessionOpened(bytes32 indexed sessionId, bytes32 indexed roomId, address indexed anchor, uint64 openedAt);
    /// @notice A live session ended; `displayedSales` is the sales count viewers were shown.
    event SessionClosed(bytes32 indexed sessionId, bytes32 recordingHash, uint64 displayedSales, uint64 closedAt);

    /// @notice Register `anchor` under platform `handle` (admin only).
    function registerAnchor(address anchor, string calldata handle) external;

    /// @notice Remove `anchor` (admin only); it can no longer endorse.
    function removeAnchor(address anchor) external;

    /// @notice Endorse as the calling anchor; consumes the caller's nonce.
    function endorse(EndorsementTerms calldata terms) external returns (bytes32 endorsementId);

    /// @notice Record an endorsement `anchor` signed as `Endorsement` typed data.
    function endorseBySig(
        address anchor,
        EndorsementTerms calldata terms,
        uint256 nonce,
        uint64 deadline,
        bytes calldata signature
    ) external returns (bytes32 endorsementId);

    /// @notice Revoke an endorsement the caller made.
    function revokeEndorsement(bytes32 endorsementId) external;

    /// @notice Revoke an endorsement for `anchor`, who signed `RevokeEndorsement`.
    function revokeEndorsementBySig(
        address anchor,
        bytes32 endorsementId,
        uint256 nonce,
        uint64 deadline,
        bytes calldata signature
    ) external;

    /// @notice Open a live session (operator, or the anchor itself).
    function openSession(bytes32 sessionId, bytes32 roomId, address anchor) external;

    /// @notice Close a live session with its recording/transcript hash and displayed sales count.
    function closeSession(bytes32 sessionId, bytes32 recordingHash, uint64 displayedSales) external;

    /// @notice The id of the endorsement `anchor` makes on `terms` with `nonce`.
    function endorsementIdOf(address anchor, EndorsementTerms calldata terms, uint256 nonce)
        external
        pure
        returns (bytes32);

    /// @notice The platform handle hash of `account`, or zero when it is not an anchor.
    function handleOf(address account) external view returns (bytes32);

    /// @notice An endorsement's anchor, end of validity and revocation state (anchor zero: none).
    function endorsement(bytes32 endorsementId)
        external
        view
        returns (address anchor, uint64 validUntil, bool revoked);

    /// @notice A session's anchor and open/close times (anchor zero: none; closedAt zero: open).
    function session(bytes32 sessionId) external view returns (address anchor, uint64 openedAt, uint64 closedAt);

    /// @notice The ProvenanceRegistry products are checked against.
    function provenance() external view returns (address);
}
