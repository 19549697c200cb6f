// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IProvenanceRegistry} from "./interfaces/IProvenanceRegistry.sol";
import {SignedActions} from "./utils/SignedActions.sol";
import {Gtin} from "./utils/Gtin.sol";

/// @title LiveProof ProvenanceRegistry
/// @notice Products by GTIN, brands' claims about them and certifiers' attestations.
contract ProvenanceRegistry is IProvenanceRegistry, SignedActions, AccessControl {
    /// @notice Role of brands; granted by {registerBrand}.
    bytes32 public constant BRAND_ROLE = keccak256("BRAND_ROLE");
    /// @notice Role of certifiers; granted by {registerCertifier}.
    bytes32 public constant CERTIFIER_ROLE = keccak256("CERTIFIER_ROLE");

    /// @dev keccak256("RegisterProduct(address brand,uint64 gtin,string name,string uri,bytes32 metadataHash,uint256 nonce,uint64 deadline)")
    bytes32 internal constant REGISTER_PRODUCT_TYPEHASH = keccak256(
        "RegisterProduct(address brand,uint64 gtin,string name,string uri,bytes32 metadataHash,uint256 nonce,uint64 deadline)"
    );
    /// @dev keccak256("ProductClaim(address issuer,bytes32 productId,bytes32 claimType,bytes32 contentHash,string uri,uint64 validUntil,uint256 nonce,uint64 deadline)")
    bytes32 internal constant PRODUCT_CLAIM_TYPEHASH = keccak256(
        "ProductClaim(address issuer,bytes32 productId,bytes32 claimType,bytes32 contentHash,string uri,uint64 validUntil,uint256 nonce,uint64 deadline)"
    );
    /// @dev keccak256("RevokeClaim(address issuer,bytes32 claimId,uint256 nonce,uint64 deadline)")
    bytes32 internal constant REVOKE_CLAIM_TYPEHASH =
        keccak256("RevokeClaim(address issuer,bytes32 claimId,uint256 nonce,uint64 deadline)");
    /// @dev keccak256("Attestation(address certifier,bytes32 claimId,bytes32 reportHash,string uri,uint256 nonce,uint64 deadline)")
    bytes32 internal constant ATTESTATION_TYPEHASH = keccak256(
        "Attestation(address certifier,bytes32 claimId,bytes32 reportHash,string uri,uint256 nonce,uint64 deadline)"
    );
    /// @dev keccak256("RevokeAttestation(address certifier,bytes32 attestationId,uint256 nonce,uint64 deadline)")
    bytes32 internal constant REVOKE_ATTESTATION_TYPEHASH =
        keccak256("RevokeAttestation(address certifier,bytes32 attestationId,uint256 nonce,uint64 deadline)");

    struct ClaimRecord {
        address issuer;
        uint64 validUntil;
        bool revoked;
    }

    struct AttestationRecord {
        address certifier;
        bool revoked;
    }

    mapping(bytes32 productId => address brand) private _productBrand;
    mapping(bytes32 claimId => ClaimRecord) private _claims;
    mapping(bytes32 attestationId => AttestationRecord) private _attestations;

    /// @param admin Holder of the admin role (registers brands and certifiers).
    constructor(address admin) SignedActions("LiveProof ProvenanceRegistry", "1") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @inheritdoc IProvenanceRegistry
    function registerBrand(address brand, string calldata name) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _grantRole(BRAND_ROLE, brand);
        emit BrandRegistered(brand, name);
    }

    /// @inheritdoc IProvenanceRegistry
    function registerCertifier(address certifier, string calldata name) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _grantRole(CERTIFIER_ROLE, certifier);
        emit CertifierRegistered(certifier, name);
    }

    /// @inheritdoc IProvenanceRegistry
    function registerProduct(ProductInput calldata product) external returns (bytes32) {
        return _registerProduct(msg.sender, product);
    }

    /// @inheritdoc IProvenanceRegistry
    function registerProductBySig(
        address brand,
        ProductInput calldata product,
        uint256 nonce,
        uint64 deadline,
        bytes calldata signature
    ) external returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                REGISTER_PRODUCT_TYPEHASH,
                brand,
                product.gtin,
                keccak256(bytes(product.name)),
                keccak256(bytes(product.uri)),
                product.metadataHash,
                nonce,
                deadline
            )
        );
        _useSignature(brand, structHash, nonce, deadline, signature);
        return _registerProduct(brand, product);
    }

    /// @inheritdoc IProvenanceRegistry
    function addClaim(ClaimInput calldata claimInput) external returns (bytes32) {
        return _addClaim(msg.sender, claimInput);
    }

    /// @inheritdoc IProvenanceRegistry
    function addClaimBySig(
        address issuer,
        ClaimInput calldata claimInput,
        uint256 nonce,
        uint64 deadline,
        bytes calldata signature
    ) external returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                PRODUCT_CLAIM_TYPEHASH,
                issuer,
                claimInput.productId,
                claimInput.claimType,
                claimInput.contentHash,
                keccak256(bytes(claimInput.uri)),
                claimInput.validUntil,
                nonce,
                deadline
            )
        );
        _useSignature(issuer, structHash, nonce, deadline, signature);
        return _addClaim(issuer, claimInput);
    }

    /// @inheritdoc IProvenanceRegistry
    function revokeClaim(bytes32 claimId) external {
        _revokeClaim(msg.sender, claimId);
    }

    /// @inheritdoc IProvenanceRegistry
    function revokeClaimBySig(
        address issuer,
        bytes32 claimId,
        uint256 nonce,
        uint64 deadline,
        bytes calldata signature
    ) external {
        bytes32 structHash = keccak256(abi.encode(REVOKE_CLAIM_TYPEHASH, issuer, claimId, nonce, deadline));
        _useSignature(issuer, structHash, nonce, deadline, signature);
        _revokeClaim(issuer, claimId);
    }

    /// @inheritdoc IProvenanceRegistry
    function attest(AttestationInput calldata attestationInput) external returns (bytes32) {
        return _attest(msg.sender, attestationInput);
    }

    /// @inheritdoc IProvenanceRegistry
    function attestBySig(
        address certifier,
        AttestationInput calldata attestationInput,
        uint256 nonce,
        uint64 deadline,
        bytes calldata signature
    ) external returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                ATTESTATION_TYPEHASH,
                certifier,
                attestationInput.claimId,
                attestationInput.reportHash,
                keccak256(bytes(attestationInput.uri)),
                nonce,
                deadline
            )
        );
        _useSignature(certifier, structHash, nonce, deadline, signature);
        return _attest(certifier, attestationInput);
    }

    /// @inheritdoc IProvenanceRegistry
    function revokeAttestation(bytes32 attestationId) external {
        _revokeAttestation(msg.sender, attestationId);
    }

    /// @inheritdoc IProvenanceRegistry
    function revokeAttestationBySig(
        address certifier,
        bytes32 attestationId,
        uint256 nonce,
        uint64 deadline,
        bytes calldata signature
    ) external {
        bytes32 structHash =
            keccak256(abi.encode(REVOKE_ATTESTATION_TYPEHASH, certifier, attestationId, nonce, deadline));
        _useSignature(certifier, structHash, nonce, deadline, signature);
        _revokeAttestation(certifier, attestationId);
    }

    /// @inheritdoc IProvenanceRegistry
    function productIdOf(uint64 gtin) public pure returns (bytes32) {
        return keccak256(abi.encode(gtin));
    }

    /// @inheritdoc IProvenanceRegistry
    function brandOf(bytes32 productId) external view returns (address) {
        return _productBrand[productId];
    }

    /// @inheritdoc IProvenanceRegistry
    function claim(bytes32 claimId) external view returns (address issuer, uint64 validUntil, bool revoked) {
        ClaimRecord storage record = _claims[claimId];
        return (record.issuer, record.validUntil, record.revoked);
    }

    /// @inheritdoc IProvenanceRegistry
    function attestation(bytes32 attestationId) external view returns (address certifier, bool revoked) {
        AttestationRecord storage record = _attestations[attestationId];
        return (record.certifier, record.revoked);
    }

    /// @inheritdoc IProvenanceRegistry
    function isBrand(address account) external view returns (bool) {
        return hasRole(BRAND_ROLE, account);
    }

    /// @inheritdoc IProvenanceRegistry
    function isCertifier(address account) external view returns (bool) {
        return hasRole(CERTIFIER_ROLE, account);
    }

    function _registerProduct(address brand, ProductInput calldata product) private returns (bytes32 productId) {
        if (!hasRole(BRAND_ROLE, brand)) revert NotBrand(brand);
        if (!Gtin.isValid(product.gtin)) revert InvalidGtin(product.gtin);
        productId = productIdOf(product.gtin);
        if (_productBrand[productId] != address(0)) revert ProductAlreadyRegistered(productId);
        _productBrand[productId] = brand;
        emit ProductRegistered(productId, brand, product.gtin, product.name, product.uri, product.metadataHash);
    }

    function _addClaim(address issuer, ClaimInput calldata claimInput) private returns (bytes32 claimId) {
        if (!hasRole(BRAND_ROLE, issuer)) revert NotBrand(issuer);
        address owner = _productBrand[claimInput.productId];
        if (owner == address(0)) revert UnknownProduct(claimInput.productId);
        if (owner != issuer) revert NotProductBrand(claimInput.productId, issuer);
        claimId = keccak256(abi.encode(claimInput.productId, claimInput.claimType, claimInput.contentHash));
        if (claimInput.validUntil <= _time()) revert ClaimExpired(claimId, claimInput.validUntil);
        if (_claims[claimId].issuer != address(0)) revert ClaimAlreadyExists(claimId);
        _claims[claimId] = ClaimRecord({issuer: issuer, validUntil: claimInput.validUntil, revoked: false});
        emit ClaimAdded(
            claimId,
            claimInput.productId,
            issuer,
            claimInput.claimType,
            claimInput.contentHash,
            claimInput.uri,
            claimInput.validUntil
        );
    }

    function _revokeClaim(address issuer, bytes32 claimId) private {
        ClaimRecord storage record = _claims[claimId];
        if (record.issuer == address(0)) revert UnknownClaim(claimId);
        if (record.issuer != issuer) revert NotClaimIssuer(claimId, issuer);
        if (record.revoked) revert ClaimAlreadyRevoked(claimId);
        record.revoked = true;
        emit ClaimRevoked(claimId, issuer, _time());
    }

    function _attest(address certifier, AttestationInput calldata attestationInput)
        private
        returns (bytes32 attestationId)
    {
        if (!hasRole(CERTIFIER_ROLE, certifier)) revert NotCertifier(certifier);
        ClaimRecord storage record = _claims[attestationInput.claimId];
        if (record.issuer == address(0)) revert UnknownClaim(attestationInput.claimId);
        if (record.revoked) revert ClaimAlreadyRevoked(attestationInput.claimId);
        if (record.validUntil <= _time()) revert ClaimExpired(attestationInput.claimId, record.validUntil);
        attestationId = keccak256(abi.encode(attestationInput.claimId, certifier));
        if (_attestations[attestationId].certifier != address(0)) revert AttestationAlreadyExists(attestationId);
        _attestations[attestationId] = AttestationRecord({certifier: certifier, revoked: false});
        emit ClaimAttested(
            attestationId, attestationInput.claimId, certifier, attestationInput.reportHash, attestationInput.uri
        );
    }

    function _revokeAttestation(address certifier, bytes32 attestationId) private {
        AttestationRecord storage record = _attestations[attestationId];
        if (record.certifier == address(0)) revert UnknownAttestation(attestationId);
        if (record.certifier != certifier) revert NotAttestationIssuer(attestationId, certifier);
        if (record.revoked) revert AttestationAlreadyRevoked(attestationId);
        record.revoked = true;
        emit AttestationRevoked(attestationId, certifier, _time());
    }
}
