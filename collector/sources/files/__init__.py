"""The files source: tails kubelet pod logs under /var/log/pods, rotation-aware and checkpointed."""
