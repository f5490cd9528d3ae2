"""The gatekeeper service: master key, epoch keys, provisioning of attested workers."""
