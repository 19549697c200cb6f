// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ISignedActions} from "./ISignedActions.sol";

/// @title Products, provenance claims and certifier attestations
/// @notice Brands and certifiers are registered by the admin. A brand registers its products by
/// GS1 GTIN and adds claims about them (origin, batch, certification); certifiers attest claims.
/// Each issuer can revoke what it issued. Only hashes and states are stored; details are emitted.
interface IProvenanceRegistry is ISignedActions {
    /// @notice A product as a brand registers it; `gtin` is a GTIN-14 (shorter GTINs zero-padded).
    struct ProductInput {
        uint64 gtin;
        string name;
        string uri;
        bytes32 metadataHash;
    }

    /// @notice A claim about a product: `claimType` names it (e.g. keccak256("origin")),
    /// `contentHash` is the hash of the document at `uri`, valid until `validUntil` (unix seconds).
    struct ClaimInput {
        bytes32 productId;
        bytes32 claimType;
        bytes32 contentHash;
        string uri;
        uint64 validUntil;
    }

    /// @notice A certifier's attestation of a claim, with the hash of its inspection report.
    struct AttestationInput {
        bytes32 claimId;
        bytes32 reportHash;
        string uri;
    }

    /// @notice `account` is not a registered brand.
    error NotBrand(address account);
    /// @notice `account` is not a registered certifier.
    error NotCertifier(address account);
    /// @notice `gtin` is not 14 digits or more with a valid GS1 check digit.
    error InvalidGtin(uint64 gtin);
    /// @notice The product with this GTIN is already registered.
    error ProductAlreadyRegistered(bytes32 productId);
    /// @notice No product has this id.
    error UnknownProduct(bytes32 productId);
    /// @notice `account` is not the brand that owns the product.
    error NotProductBrand(bytes32 productId, address account);
    /// @notice The same claim (product, type, content) was already added.
    error ClaimAlreadyExists(bytes32 claimId);
    /// @notice No claim has this id.
    error UnknownClaim(bytes32 claimId);
    /// @notice The claim's validity ended at `validUntil`.
    error ClaimExpired(bytes32 claimId, uint64 validUntil);
    /// @notice The claim was revoked.
    error ClaimAlreadyRevoked(bytes32 claimId);
    /// @notice `account` did not issue this claim.
    error NotClaimIssuer(bytes32 claimId, address account);
    /// @notice This certifier already attested this claim.
    error AttestationAlreadyExists(bytes32 attestationId);
    /// @notice No attestation has this id.
    error UnknownAttestation(bytes32 attestationId);
    /// @notice The attestation was revoked.
    error AttestationAlreadyRevoked(bytes32 attestationId);
    /// @notice `account` did not issue this attestation.
    error NotAttestationIssuer(bytes32 attestationId, address account);

    /// @notice The admin registered `brand` under `name`.
    event BrandRegistered(address indexed brand, string name);
    /// @notice The admin registered `certifier` under `name`.
    event CertifierRegistered(address indexed certifier, string name);
    /// @notice `brand` registered a product.
    event ProductRegistered(
        bytes32 indexed productId, address indexed brand, uint64 gtin, string name, string uri, bytes32 metadataHash
    );
    /// @notice `issuer` added a claim about `productId`.
    event ClaimAdded(
        bytes32 indexed claimId,
        bytes32 indexed productId,
        address indexed issuer,
        bytes32 claimType,
        bytes32 contentHash,
        string uri,
        uint64 validUntil
    );
    /// @notice `issuer` revoked a claim.
    event ClaimRevoked(bytes32 indexed claimId, address indexed issuer, uint64 revokedAt);
    /// @notice `certifier` attested a claim.
    event ClaimAttested(
        bytes32 indexed attestationId, bytes32 indexed claimId, address indexed certifier, bytes32 reportHash, string uri
    );
    /// @notice `certifier` revoked an attestation.
    event AttestationRevoked(bytes32 indexed attestationId, address indexed certifier, uint64 revokedAt);

    /// @notice Register `brand` (admin only).
    function registerBrand(address brand, string calldata name) external;

    /// @notice Register `certifier` (admin only).
    function registerCertifier(address certifier, string calldata name) external;

    /// @notice Register a product owned by the calling brand.
    function registerProduct(ProductInput calldata product) external returns (bytes32 productId);

    /// @notice Register a product for `brand`, who signed `RegisterProduct`.
    function registerProductBySig(
        address brand,
        ProductInput calldata product,
        uint256 nonce,
        uint64 deadline,
        bytes calldata signature
    ) external returns (bytes32 productId);

    /// @notice Add a claim about one of the calling brand's products.
    function addClaim(ClaimInput calldata claim) external returns (bytes32 claimId);

    /// @notice Add a claim for `issuer`, who signed `ProductClaim`.
    function addClaimBySig(
        address issuer,
        ClaimInput calldata claim,
        uint256 nonce,
        uint64 deadline,
        bytes calldata signature
    ) external returns (bytes32 claimId);

    /// @notice Revoke a claim the caller issued.
    function revokeClaim(bytes32 claimId) external;

    /// @notice Revoke a claim for `issuer`, who signed `RevokeClaim`.
    function revokeClaimBySig(
        address issuer,
        bytes32 claimId,
        uint256 nonce,
        uint64 deadline,
        bytes calldata signature
    ) external;

    /// @notice Attest a claim as the calling certifier.
    function attest(AttestationInput calldata attestation) external returns (bytes32 attestationId);

    /// @notice Attest a claim for `certifier`, who signed `Attestation`.
    function attestBySig(
        address certifier,
        AttestationInput calldata attestation,
        uint256 nonce,
        uint64 deadline,
        bytes calldata signature
    ) external returns (bytes32 attestationId);

    /// @notice Revoke an attestation the caller issued.
    function revokeAttestation(bytes32 attestationId) external;

    /// @notice Revoke an attestation for `certifier`, who signed `RevokeAttestation`.
    function revokeAttestationBySig(
        address certifier,
        bytes32 attestationId,
        uint256 nonce,
        uint64 deadline,
        bytes calldata signature
    ) external;

    /// @notice The id a product with this GTIN has (whether or not it is registered).
    function productIdOf(uint64 gtin) external pure returns (bytes32);

    /// @notice The brand that registered `productId`, or zero.
    function brandOf(bytes32 productId) external view returns (address);

    /// @notice A claim's issuer, end of validity and revocation state (issuer zero: no such claim).
    function claim(bytes32 claimId) external view returns (address issuer, uint64 validUntil, bool revoked);

    /// @notice An attestation's certifier and revocation state (certifier zero: no such attestation).
    function attestation(bytes32 attestationId) external view returns (address certifier, bool revoked);

    /// @notice True when `account` is a registered brand.
    function isBrand(address account) external view returns (bool);

    /// @notice True when `account` is a registered certifier.
    function isCertifier(address account) external view returns (bool);
}
