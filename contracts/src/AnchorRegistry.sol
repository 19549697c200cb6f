// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IAnchorRegistry} from "./interfaces/IAnchorRegistry.sol";
import {IProvenanceRegistry} from "./interfaces/IProvenanceRegistry.sol";
import {SignedActions} from "./utils/SignedActions.sol";

/// @title LiveProof AnchorRegistry
/// @notice Anchors, their signed endorsements and revocations, and live sessions.
contract AnchorRegistry is IAnchorRegistry, SignedActions, AccessControl {
    /// @notice Role of the platform's operator, who opens and closes live sessions.
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");

    /// @dev keccak256("Endorsement(address anchor,bytes32 productId,bytes32 claimsDigest,bytes32 roomId,bool sponsored,uint16 commissionBps,uint256 unitPrice,bytes3 currency,uint64 validFrom,uint64 validUntil,uint256 nonce,uint64 deadline)")
    bytes32 internal constant ENDORSEMENT_TYPEHASH = keccak256(
        "Endorsement(address anchor,bytes32 productId,bytes32 claimsDigest,bytes32 roomId,bool sponsored,uint16 commissionBps,uint256 unitPrice,bytes3 currency,uint64 validFrom,uint64 validUntil,uint256 nonce,uint64 deadline)"
    );
    /// @dev keccak256("RevokeEndorsement(address anchor,bytes32 endorsementId,uint256 nonce,uint64 deadline)")
    bytes32 internal constant REVOKE_ENDORSEMENT_TYPEHASH =
        keccak256("RevokeEndorsement(address anchor,bytes32 endorsementId,uint256 nonce,uint64 deadline)");

    uint16 private constant _MAX_BPS = 10_000;

    struct EndorsementRecord {
        address anchor;
        uint64 validUntil;
        bool revoked;
    }

    struct SessionRecord {
        address anchor;
        uint64 openedAt;
        uint64 closedAt;
    }

    IProvenanceRegistry private immutable _provenance;

    mapping(address anchor => bytes32 handleHash) private _handles;
    mapping(bytes32 handleHash => address anchor) private _anchorsByHandle;
    mapping(bytes32 endorsementId => EndorsementRecord) private _endorsements;
    mapping(bytes32 sessionId => SessionRecord) private _sessions;

    /// @param admin Holder of the admin role (registers anchors, grants the operator role).
    /// @param operator Holder of the operator role (opens and closes sessions).
    /// @param provenanceRegistry The ProvenanceRegistry whose products anchors endorse.
    constructor(address admin, address operator, IProvenanceRegistry provenanceRegistry)
        SignedActions("LiveProof AnchorRegistry", "1")
    {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, operator);
        _provenance = provenanceRegistry;
    }

    /// @inheritdoc IAnchorRegistry
    function registerAnchor(address anchor, string calldata handle) external onlyRole(DEFAULT_ADMIN_ROLE) {
        bytes32 handleHash = keccak256(bytes(handle));
        if (_handles[anchor] != bytes32(0)) revert AnchorAlreadyRegistered(anchor);
        if (_anchorsByHandle[handleHash] != address(0)) revert HandleTaken(handleHash);
        _handles[anchor] = handleHash;
        _anchorsByHandle[handleHash] = anchor;
        emit AnchorRegistered(anchor, handleHash, handle);
    }

    /// @inheritdoc IAnchorRegistry
    function removeAnchor(address anchor) external onlyRole(DEFAULT_ADMIN_ROLE) {
        bytes32 handleHash = _handles[anchor];
        if (handleHash == bytes32(0)) revert NotAnchor(anchor);
        delete _handles[anchor];
        delete _anchorsByHandle[handleHash];
        emit AnchorRemoved(anchor, handleHash);
    }

    /// @inheritdoc IAnchorRegistry
    function endorse(EndorsementTerms calldata terms) external returns (bytes32) {
        return _endorse(msg.sender, terms, _useNonce(msg.sender));
    }

    /// @inheritdoc IAnchorRegistry
    function endorseBySig(
        address anchor,
        EndorsementTerms calldata terms,
        uint256 nonce,
        uint64 deadline,
        bytes calldata signature
    ) external returns (bytes32) {
        _useSignature(anchor, _endorsementStructHash(anchor, terms, nonce, deadline), nonce, deadline, signature);
        return _endorse(anchor, terms, nonce);
    }

    /// @inheritdoc IAnchorRegistry
    function revokeEndorsement(bytes32 endorsementId) external {
        _revokeEndorsement(msg.sender, endorsementId);
    }

    /// @inheritdoc IAnchorRegistry
    function revokeEndorsementBySig(
        address anchor,
        bytes32 endorsementId,
        uint256 nonce,
        uint64 deadline,
        bytes calldata signature
    ) external {
        bytes32 structHash =
            keccak256(abi.encode(REVOKE_ENDORSEMENT_TYPEHASH, anchor, endorsementId, nonce, deadline));
        _useSignature(anchor, structHash, nonce, deadline, signature);
        _revokeEndorsement(anchor, endorsementId);
    }

    /// @inheritdoc IAnchorRegistry
    function openSession(bytes32 sessionId, bytes32 roomId, address anchor) external {
        if (msg.sender != anchor && !hasRole(OPERATOR_ROLE, msg.sender)) {
            revert NotSessionManager(sessionId, msg.sender);
        }
        if (_handles[anchor] == bytes32(0)) revert NotAnchor(anchor);
        if (_sessions[sessionId].anchor != address(0)) revert SessionAlreadyExists(sessionId);
        uint64 now_ = _time();
        _sessions[sessionId] = SessionRecord({anchor: anchor, openedAt: now_, closedAt: 0});
        emit SessionOpened(sessionId, roomId, anchor, now_);
    }

    /// @inheritdoc IAnchorRegistry
    function closeSession(bytes32 sessionId, bytes32 recordingHash, uint64 displayedSales) external {
        SessionRecord storage record = _sessions[sessionId];
        if (record.anchor == address(0)) revert UnknownSession(sessionId);
        if (msg.sender != record.anchor && !hasRole(OPERATOR_ROLE, msg.sender)) {
            revert NotSessionManager(sessionId, msg.sender);
        }
        if (record.closedAt != 0) revert SessionAlreadyClosed(sessionId);
        uint64 now_ = _time();
        record.closedAt = now_;
        emit SessionClosed(sessionId, recordingHash, displayedSales, now_);
    }

    /// @inheritdoc IAnchorRegistry
    function endorsementIdOf(address anchor, EndorsementTerms calldata terms, uint256 nonce)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(anchor, terms, nonce));
    }

    /// @inheritdoc IAnchorRegistry
    function handleOf(address account) external view returns (bytes32) {
        return _handles[account];
    }

    /// @inheritdoc IAnchorRegistry
    function endorsement(bytes32 endorsementId)
        external
        view
        returns (address anchor, uint64 validUntil, bool revoked)
    {
        EndorsementRecord storage record = _endorsements[endorsementId];
        return (record.anchor, record.validUntil, record.revoked);
    }

    /// @inheritdoc IAnchorRegistry
    function session(bytes32 sessionId) external view returns (address anchor, uint64 openedAt, uint64 closedAt) {
        SessionRecord storage record = _sessions[sessionId];
        return (record.anchor, record.openedAt, record.closedAt);
    }

    /// @inheritdoc IAnchorRegistry
    function provenance() external view returns (address) {
        return address(_provenance);
    }

    function _endorsementStructHash(address anchor, EndorsementTerms calldata terms, uint256 nonce, uint64 deadline)
        private
        pure
        returns (bytes32)
    {
        // Two encodes because thirteen words in one abi.encode overflow the legacy stack.
        bytes memory head = abi.encode(
            ENDORSEMENT_TYPEHASH, anchor, terms.productId, terms.claimsDigest, terms.roomId, terms.sponsored
        );
        bytes memory tail = abi.encode(
            terms.commissionBps, terms.unitPrice, terms.currency, terms.validFrom, terms.validUntil, nonce, deadline
        );
        return keccak256(bytes.concat(head, tail));
    }

    function _endorse(address anchor, EndorsementTerms calldata terms, uint256 nonce)
        private
        returns (bytes32 endorsementId)
    {
        if (_handles[anchor] == bytes32(0)) revert NotAnchor(anchor);
        if (terms.validUntil <= terms.validFrom) revert InvalidValidityWindow(terms.validFrom, terms.validUntil);
        if (terms.validUntil <= _time()) revert EndorsementExpired(terms.validUntil);
        if (terms.commissionBps > _MAX_BPS) revert InvalidCommission(terms.commissionBps);
        if (_provenance.brandOf(terms.productId) == address(0)) revert UnknownProduct(terms.productId);
        endorsementId = endorsementIdOf(anchor, terms, nonce);
        // A fresh nonce makes the id new, so no existence check is needed.
        _endorsements[endorsementId] = EndorsementRecord({anchor: anchor, validUntil: terms.validUntil, revoked: false});
        emit EndorsementRecorded(endorsementId, anchor, terms.productId, terms, nonce);
    }

    function _revokeEndorsement(address anchor, bytes32 endorsementId) private {
        EndorsementRecord storage record = _endorsements[endorsementId];
        if (record.anchor == address(0)) revert UnknownEndorsement(endorsementId);
        if (record.anchor != anchor) revert NotEndorser(endorsementId, anchor);
        if (record.revoked) revert EndorsementAlreadyRevoked(endorsementId);
        record.revoked = true;
        emit EndorsementRevoked(endorsementId, anchor, _time());
    }
}
