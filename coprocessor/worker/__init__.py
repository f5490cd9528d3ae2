"""The worker service (the pRuntime): attestation, code by hash, sandboxed runs, signatures."""
