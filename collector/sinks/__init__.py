"""Sinks: where documents go (OpenSearch, or stdout for a dry run)."""
