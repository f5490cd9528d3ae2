// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

import {TeeRegistry} from "../src/TeeRegistry.sol";
import {ITeeRegistry} from "../src/interfaces/ITeeRegistry.sol";
import {TeeSetup} from "./utils/RouterSetup.sol";

contract TeeRegistry_Gatekeepers is TeeSetup {
    function test_AddGatekeeper_AndRemove() public {
        address other = address(0x0702);
        vm.startPrank(OWNER);
        vm.expectEmit(address(tee));
        emit ITeeRegistry.GatekeeperAdded(other);
        tee.addGatekeeper(other);
        assertTrue(tee.isGatekeeper(other));
        vm.expectEmit(address(tee));
        emit ITeeRegistry.GatekeeperRemoved(other);
        tee.removeGatekeeper(other);
        assertFalse(tee.isGatekeeper(other));
    }

    function test_AddGatekeeper_RevertWhen_AlreadyAdded() public {
        vm.prank(OWNER);
        vm.expectRevert(abi.encodeWithSelector(ITeeRegistry.GatekeeperUnchanged.selector, GATEKEEPER, true));
        tee.addGatekeeper(GATEKEEPER);
    }

    function test_AddGatekeeper_RevertWhen_Zero() public {
        vm.prank(OWNER);
        vm.expectRevert(ITeeRegistry.ZeroAddress.selector);
        tee.addGatekeeper(address(0));
    }

    function test_RemoveGatekeeper_RevertWhen_Unknown() public {
        vm.prank(OWNER);
        vm.expectRevert(abi.encodeWithSelector(ITeeRegistry.GatekeeperUnchanged.selector, address(1), false));
        tee.removeGatekeeper(address(1));
    }

    function test_AddGatekeeper_RevertWhen_NotOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(this)));
        tee.addGatekeeper(address(1));
    }
}

contract TeeRegistry_Measurements is TeeSetup {
    bytes32 internal constant MEASUREMENT = keccak256("worker v1");

    function test_AllowMeasurement_AndRevoke() public {
        vm.startPrank(OWNER);
        vm.expectEmit(address(tee));
        emit ITeeRegistry.MeasurementAllowed(MEASUREMENT);
        tee.allowMeasurement(MEASUREMENT);
        assertTrue(tee.isMeasurementAllowed(MEASUREMENT));
        vm.expectEmit(address(tee));
        emit ITeeRegistry.MeasurementRevoked(MEASUREMENT);
        tee.revokeMeasurement(MEASUREMENT);
        assertFalse(tee.isMeasurementAllowed(MEASUREMENT));
    }

    function test_AllowMeasurement_RevertWhen_AlreadyAllowed() public {
        vm.startPrank(OWNER);
        tee.allowMeasurement(MEASUREMENT);
        vm.expectRevert(abi.encodeWithSelector(ITeeRegistry.MeasurementUnchanged.selector, MEASUREMENT, true));
        tee.allowMeasurement(MEASUREMENT);
    }

    function test_RevokeMeasurement_RevertWhen_Unknown() public {
        vm.prank(OWNER);
        vm.expectRevert(abi.encodeWithSelector(ITeeRegistry.MeasurementUnchanged.selector, MEASUREMENT, false));
        tee.revokeMeasurement(MEASUREMENT);
    }

    function test_AllowMeasurement_RevertWhen_NotOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(this)));
        tee.allowMeasurement(MEASUREMENT);
    }
}

contract TeeRegistry_PublishEpoch is TeeSetup {
    function test_PublishEpoch_FirstEpochNeedsNoRotation() public view {
        ITeeRegistry.Epoch memory epoch = tee.getEpoch(1);
        assertEq(tee.currentEpoch(), 1);
        assertEq(epoch.signer, vm.addr(CLUSTER_KEY_1));
        assertEq(epoch.encryptionKey, ENCRYPTION_KEY);
        assertEq(epoch.publishedAt, 100);
        assertEq(epoch.validBefore, type(uint48).max);
    }

    function test_PublishEpoch_RotationMakesNextEpochCurrent() public {
        vm.roll(120);
        vm.prank(OWNER);
        vm.expectEmit(address(tee));
        emit ITeeRegistry.RotationRequested(2);
        tee.requestRotation();
        assertTrue(tee.rotationPending());

        vm.expectEmit(address(tee));
        emit ITeeRegistry.EpochPublished(2, vm.addr(CLUSTER_KEY_2), bytes32(uint256(2)), GATEKEEPER);
        vm.prank(GATEKEEPER);
        tee.publishEpoch(2, vm.addr(CLUSTER_KEY_2), bytes32(uint256(2)));

        assertEq(tee.currentEpoch(), 2);
        assertFalse(tee.rotationPending());
        (address signer, uint48 validBefore) = tee.epochSigner(1);
        assertEq(signer, vm.addr(CLUSTER_KEY_1));
        assertEq(validBefore, 120, "epoch 1 answers only requests made before block 120");
    }

    function test_PublishEpoch_RevokesTheEpochBeforeThePrevious() public {
        _rotate(CLUSTER_KEY_2);
        _rotate(CLUSTER_KEY_3);
        (, uint48 validBefore) = tee.epochSigner(1);
        assertEq(validBefore, 0);
    }

    function test_PublishEpoch_RevertWhen_NotGatekeeper() public {
        vm.expectRevert(abi.encodeWithSelector(ITeeRegistry.NotGatekeeper.selector, address(this)));
        tee.publishEpoch(2, address(1), bytes32(uint256(1)));
    }

    function test_PublishEpoch_RevertWhen_NoRotationRequested() public {
        vm.prank(GATEKEEPER);
        vm.expectRevert(ITeeRegistry.RotationNotRequested.selector);
        tee.publishEpoch(2, address(1), bytes32(uint256(1)));
    }

    function test_PublishEpoch_RevertWhen_EpochSkipped() public {
        vm.prank(OWNER);
        tee.requestRotation();
        vm.prank(GATEKEEPER);
        vm.expectRevert(abi.encodeWithSelector(ITeeRegistry.UnexpectedEpoch.selector, 3, 2));
        tee.publishEpoch(3, address(1), bytes32(uint256(1)));
    }

    function test_PublishEpoch_RevertWhen_KeysZero() public {
        vm.prank(OWNER);
        tee.requestRotation();
        vm.startPrank(GATEKEEPER);
        vm.expectRevert(ITeeRegistry.InvalidEpochKeys.selector);
        tee.publishEpoch(2, address(0), bytes32(uint256(1)));
        vm.expectRevert(ITeeRegistry.InvalidEpochKeys.selector);
        tee.publishEpoch(2, address(1), bytes32(0));
    }

    function test_RequestRotation_RevertWhen_AlreadyPending() public {
        vm.startPrank(OWNER);
        tee.requestRotation();
        vm.expectRevert(abi.encodeWithSelector(ITeeRegistry.RotationAlreadyRequested.selector, 2));
        tee.requestRotation();
    }

    function test_RequestRotation_RevertWhen_NoEpochYet() public {
        TeeRegistry fresh = new TeeRegistry(address(this));
        vm.expectRevert(ITeeRegistry.NoActiveEpoch.selector);
        fresh.requestRotation();
    }

    function test_RequestRotation_RevertWhen_NotOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(this)));
        tee.requestRotation();
    }
}

