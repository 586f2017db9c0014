"""Kubernetes awareness: the pod watch cache, enrichment presets, static metadata, and the client boundary."""
