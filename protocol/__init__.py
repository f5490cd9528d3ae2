"""The protocol both sides speak: request fields and EIP-712 results, wire models, statuses,
sealed envelopes and statements, deployment files.

The worker and gatekeeper (coprocessor/, measured) and the host side (bridge/, webui/, enclave/)
both import it, and it imports neither: it is part of what a worker's measurement covers.
"""
