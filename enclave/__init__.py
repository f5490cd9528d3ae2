"""Enclave Agents: the command line and the pieces that tie the stack together.

The packages, and which way they depend:

    enclave (CLI, orchestration) ──▶ bridge ──HTTP──▶ coprocessor (worker, gatekeeper, runtime)
                                 ──▶ webui  ──reads──▶ bridge's store, coprocessor's client API
"""
