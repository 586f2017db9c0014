"""Kubernetes awareness: enrichment presets, the node's pod watch cache, static pod metadata, and the client boundary.

``presets`` (pure: pod JSON in, document fields out), ``objects`` (pure, tolerant readers of raw
objects and the API's timestamps), ``reflector`` (the one list-then-watch loop) and ``static``
import nothing heavy; ``client`` is the only module importing the ``kubernetes`` package, and
``pods`` loads it lazily.
"""
