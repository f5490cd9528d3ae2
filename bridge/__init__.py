"""The bridge: watches the chain, persists requests, dispatches to workers, submits results."""
