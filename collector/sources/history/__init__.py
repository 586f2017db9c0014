"""Deployment history: Kubernetes Events, container lifecycle and InferenceService status as documents (``servelog events``)."""
