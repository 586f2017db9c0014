"""The OpenSearch sink: client boundary, per-item retry verdicts, dead-letter."""
