"""Sources: where lines come from (kubelet files, or the Kubernetes API)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from collector.transforms.assembler import AssemblerOptions

if TYPE_CHECKING:  # collector.settings imports the history source's settings group from this package
    from collector.settings import Settings


def assembler_options(settings: Settings) -> AssemblerOptions:
    """The line assembler's options, the same for every source."""
    return AssemblerOptions(
        index_template=settings.opensearch.index, max_line_bytes=settings.pipeline.max_line_bytes,
        multiline=settings.pipeline.multiline, multiline_max_lines=settings.pipeline.multiline_max_lines,
        native=settings.pipeline.native,
    )
