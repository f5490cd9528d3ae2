"""The TEE side: the agent runtime, the worker (pRuntime), the gatekeeper and TEE backends."""
