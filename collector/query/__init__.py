"""Reading indexed logs back: ``servelog logs`` (a gap-free, cursor-based query client)."""
