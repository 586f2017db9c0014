"""Transforms: pure decisions on lines (CRI parsing, grouping, levels, identity, enrichment)."""
