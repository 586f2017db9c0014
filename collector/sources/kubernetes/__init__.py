"""The Kubernetes API source: streams ``pods/log`` for clusters where hostPath is not allowed."""
