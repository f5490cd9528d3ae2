// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";

import {ITeeRegistry} from "./interfaces/ITeeRegistry.sol";

/// @title TeeRegistry
/// @notice Gatekeepers, allowed worker measurements and the key epochs of the cluster.
contract TeeRegistry is ITeeRegistry, Ownable2Step {
    /// @dev `validBefore` of the current epoch: no request is too new for it.
    uint48 private constant OPEN_ENDED = type(uint48).max;

    mapping(address gatekeeper => bool) private s_gatekeepers;
    mapping(bytes32 measurement => bool) private s_allowedMeasurements;
    mapping(uint64 epoch => Epoch) private s_epochs;
    uint64 private s_currentEpoch;
    bool private s_rotationPending;

    constructor(address owner) Ownable(owner) {}

    /// @inheritdoc ITeeRegistry
    function addGatekeeper(address gatekeeper) external onlyOwner {
        if (gatekeeper == address(0)) revert ZeroAddress();
        if (s_gatekeepers[gatekeeper]) revert GatekeeperUnchanged(gatekeeper, true);
        s_gatekeepers[gatekeeper] = true;
        emit GatekeeperAdded(gatekeeper);
    }

    /// @inheritdoc ITeeRegistry
    function removeGatekeeper(address gatekeeper) external onlyOwner {
        if (!s_gatekeepers[gatekeeper]) revert GatekeeperUnchanged(gatekeeper, false);
        s_gatekeepers[gatekeeper] = false;
        emit GatekeeperRemoved(gatekeeper);
    }

    /// @inheritdoc ITeeRegistry
    function allowMeasurement(bytes32 measurement) external onlyOwner {
        if (s_allowedMeasurements[measurement]) revert MeasurementUnchanged(measurement, true);
        s_allowedMeasurements[measurement] = true;
        emit MeasurementAllowed(measurement);
    }

    /// @inheritdoc ITeeRegistry
    function revokeMeasurement(bytes32 measurement) external onlyOwner {
        if (!s_allowedMeasurements[measurement]) revert MeasurementUnchanged(measurement, false);
        s_allowedMeasurements[measurement] = false;
        emit MeasurementRevoked(measurement);
    }

    /// @inheritdoc ITeeRegistry
    function requestRotation() external onlyOwner {
        uint64 current = s_currentEpoch;
        if (current == 0) revert NoActiveEpoch();
        if (s_rotationPending) revert RotationAlreadyRequested(current + 1);
        s_rotationPending = true;
        emit RotationRequested(current + 1);
    }

    /// @inheritdoc ITeeRegistry
    function publishEpoch(uint64 epoch, address signer, bytes32 encryptionKey) external {
        if (!s_gatekeepers[msg.sender]) revert NotGatekeeper(msg.sender);
        uint64 current = s_currentEpoch;
        if (epoch != current + 1) revert UnexpectedEpoch(epoch, current + 1);
        if (current != 0 && !s_rotationPending) revert RotationNotRequested();
        if (signer == address(0) || encryptionKey == bytes32(0)) revert InvalidEpochKeys();

        uint48 now_ = uint48(block.number);
        if (current != 0) {
            // The outgoing epoch may still answer the requests made before this block...
            s_epochs[current].validBefore = now_;
            // ...and the one before it is done: its requests had a whole epoch to be answered.
            if (current > 1) s_epochs[current - 1].validBefore = 0;
        }
        s_epochs[epoch] =
            Epoch({signer: signer, publishedAt: now_, validBefore: OPEN_ENDED, encryptionKey: encryptionKey});
        s_currentEpoch = epoch;
        s_rotationPending = false;
        emit EpochPublished({epoch: epoch, signer: signer, encryptionKey: encryptionKey, gatekeeper: msg.sender});
    }

    /// @inheritdoc ITeeRegistry
    function epochSigner(uint64 epoch) external view returns (address signer, uint48 validBefore) {
        Epoch storage record = s_epochs[epoch];
        return (record.signer, record.validBefore);
    }

    /// @inheritdoc ITeeRegistry
    function getEpoch(uint64 epoch) external view returns (Epoch memory record) {
        return s_epochs[epoch];
    }

    /// @inheritdoc ITeeRegistry
    function currentEpoch() external view returns (uint64 epoch) {
        return s_currentEpoch;
    }

    /// @inheritdoc ITeeRegistry
    function rotationPending() external view returns (bool pending) {
        return s_rotationPending;
    }

    /// @inheritdoc ITeeRegistry
    function isGatekeeper(address account) external view returns (bool active) {
        return s_gatekeepers[account];
    }

    /// @inheritdoc ITeeRegistry
    function isMeasurementAllowed(bytes32 measurement) external view returns (bool allowed) {
        return s_allowedMeasurements[measurement];
    }
}
