"""Pipeline plumbing between sources and sinks: batches, ordered acknowledgement, checkpoints."""
