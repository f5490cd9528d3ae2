"""TEE backends behind one interface: `simulated` (default) and, next, `dcap`."""
