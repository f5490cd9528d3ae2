// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title EnclaveToken
/// @notice The plain ERC-20 (with EIP-2612 permit) that a local stack deploys for operators to
///         stake and for requests and subscriptions to pay fees in. A deployment may use any
///         ERC-20 instead; this one's owner mints.
contract EnclaveToken is ERC20, ERC20Permit, Ownable {
    /// @param owner Who may mint.
    constructor(address owner)
        ERC20("Enclave Agents Token", "EAT")
        ERC20Permit("Enclave Agents Token")
        Ownable(owner)
    {}

    /// @notice Mints `amount` to `to`. Owner only.
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
