"""Benchmarks: a deterministic corpus, a loopback bulk sink, and the end-to-end runner."""
