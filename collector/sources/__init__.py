"""Sources: where lines come from (kubelet log files, or the Kubernetes API)."""
