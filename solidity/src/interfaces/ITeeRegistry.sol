// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ITeeRegistry
/// @notice The trust anchor of the coprocessor: which gatekeepers manage keys, which worker
///         measurements may receive them, and the cluster key of every epoch.
/// @dev Rotation is a small state machine: the owner calls `requestRotation`, a gatekeeper
///      publishes the next epoch, and the new epoch is active at once. The previous epoch's
///      signer stays valid only for requests created before the new epoch was published; the
///      epoch before that is revoked entirely.
interface ITeeRegistry {
    /// @notice A key epoch.
    /// @param signer The cluster key's secp256k1 address that signs results.
    /// @param publishedAt Block in which the epoch was published.
    /// @param validBefore Requests created at or after this block may not use this epoch;
    ///        `type(uint48).max` while the epoch is current, 0 once revoked.
    /// @param encryptionKey The cluster's X25519 public key, for sealing inputs to workers.
    struct Epoch {
        address signer;
        uint48 publishedAt;
        uint48 validBefore;
        bytes32 encryptionKey;
    }

    /// @notice Thrown when someone other than a gatekeeper publishes an epoch.
    error NotGatekeeper(address caller);
    /// @notice Thrown when the published epoch is not the one that comes next.
    error UnexpectedEpoch(uint64 epoch, uint64 expected);
    /// @notice Thrown when publishing a new epoch while no rotation was requested.
    error RotationNotRequested();
    /// @notice Thrown when a rotation is requested while one is already pending.
    error RotationAlreadyRequested(uint64 nextEpoch);
    /// @notice Thrown when rotation is requested before the first epoch exists.
    error NoActiveEpoch();
    /// @notice Thrown when an epoch is published with a zero signer or encryption key.
    error InvalidEpochKeys();
    /// @notice Thrown when adding a gatekeeper that exists or removing one that does not.
    error GatekeeperUnchanged(address gatekeeper, bool active);
    /// @notice Thrown when allowing an allowed measurement or revoking an unknown one.
    error MeasurementUnchanged(bytes32 measurement, bool allowed);
    /// @notice Thrown when a zero address is given where an account is needed.
    error ZeroAddress();

    /// @notice Emitted when a gatekeeper is added.
    /// @param gatekeeper Its address.
    event GatekeeperAdded(address indexed gatekeeper);
    /// @notice Emitted when a gatekeeper is removed.
    /// @param gatekeeper Its address.
    event GatekeeperRemoved(address indexed gatekeeper);
    /// @notice Emitted when a worker measurement becomes allowed to receive keys.
    /// @param measurement The measurement (for the simulated backend, the hash of the worker code).
    event MeasurementAllowed(bytes32 indexed measurement);
    /// @notice Emitted when a worker measurement is no longer allowed.
    /// @param measurement The measurement.
    event MeasurementRevoked(bytes32 indexed measurement);
    /// @notice Emitted when the owner asks the gatekeepers for a new epoch.
    /// @param nextEpoch The epoch that the gatekeepers should publish.
    event RotationRequested(uint64 indexed nextEpoch);
    /// @notice Emitted when a gatekeeper publishes an epoch, which becomes the current one.
    /// @param epoch The epoch number, counting from 1.
    /// @param signer The cluster key's signer address.
    /// @param encryptionKey The cluster's X25519 public key.
    /// @param gatekeeper Who published it.
    event EpochPublished(uint64 indexed epoch, address signer, bytes32 encryptionKey, address indexed gatekeeper);

    /// @notice Adds a gatekeeper. Owner only.
    /// @param gatekeeper Its address.
    function addGatekeeper(address gatekeeper) external;

    /// @notice Removes a gatekeeper. Owner only.
    /// @param gatekeeper Its address.
    function removeGatekeeper(address gatekeeper) external;

    /// @notice Allows workers with this measurement to receive cluster keys. Owner only.
    /// @param measurement The measurement.
    function allowMeasurement(bytes32 measurement) external;

    /// @notice Stops provisioning workers with this measurement. Owner only.
    /// @param measurement The measurement.
    function revokeMeasurement(bytes32 measurement) external;

    /// @notice Asks the gatekeepers to rotate to a new epoch. Owner only.
    function requestRotation() external;

    /// @notice Publishes the next epoch's keys and makes it current. Gatekeepers only; the first
    ///         epoch needs no rotation request, every later one does.
    /// @param epoch Must be `currentEpoch() + 1`.
    /// @param signer The new cluster signer address.
    /// @param encryptionKey The new cluster X25519 public key.
    function publishEpoch(uint64 epoch, address signer, bytes32 encryptionKey) external;

    /// @notice The signer of an epoch and the block from which it may no longer answer requests.
    /// @dev The router's hot path: one storage read.
    /// @param epoch The epoch.
    /// @return signer Zero for an unknown epoch.
    /// @return validBefore Requests created at or after this block may not use the epoch.
    function epochSigner(uint64 epoch) external view returns (address signer, uint48 validBefore);

    /// @notice Returns an epoch's record.
    /// @param epoch The epoch.
    /// @return record The record; all zero for an unknown epoch.
    function getEpoch(uint64 epoch) external view returns (Epoch memory record);

    /// @notice The current epoch, 0 before the first is published.
    /// @return epoch The epoch number.
    function currentEpoch() external view returns (uint64 epoch);

    /// @notice Whether a rotation was requested and the next epoch is not yet published.
    /// @return pending True while rotating.
    function rotationPending() external view returns (bool pending);

    /// @notice Whether an address is a gatekeeper.
    /// @param account The address.
    /// @return active True for a gatekeeper.
    function isGatekeeper(address account) external view returns (bool active);

    /// @notice Whether workers with this measurement may receive keys.
    /// @param measurement The measurement.
    /// @return allowed True when allowed.
    function isMeasurementAllowed(bytes32 measurement) external view returns (bool allowed);
}
