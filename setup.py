"""Build hook: the wheel carries the setup assets (``index_templates/``, ``dashboards/``) as package data.

The assets live at the top of the repository, where operators read, diff and import them without
servelog, and where ``dashboards/generate.py`` writes them. A wheel can only carry files inside a
package, so ``build_py`` copies them to ``collector/assets/`` in the build tree (never into the
source tree); :mod:`collector.setup.assets` looks there in an installed wheel and in the checkout for
an editable install.

The compiled fast path ``collector._native`` (the Rust crate in ``native/``, PyO3) is built by
``setuptools-rust`` when a Rust toolchain is present. It is optional: without ``cargo`` (or without
``setuptools-rust`` in a build that has no isolation) the install still succeeds and servelog runs
on the pure-Python reference path (``pipeline.native: auto``). Everything else is declared in
``pyproject.toml``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

try:
    from setuptools_rust import Binding, RustExtension
except ImportError:  # a build without isolation in an environment without setuptools-rust
    RUST_EXTENSIONS: list[object] = []
else:
    RUST_EXTENSIONS = [
        RustExtension("collector._native", path="native/Cargo.toml", binding=Binding.PyO3, optional=True,
                      py_limited_api="auto", debug=False),  # release even for `pip install -e`: it is the hot path
    ]

ROOT = Path(__file__).resolve().parent
ASSETS = {"index_templates": "*.json", "dashboards": "*.ndjson"}  # folder -> shipped files


class BuildPyWithAssets(build_py):
    """``build_py`` that also copies the assets into ``<build_lib>/collector/assets/``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads them from the checkout
        for folder, pattern in ASSETS.items():
            files = sorted((ROOT / folder).glob(pattern))
            if not files:
                raise SystemExit(f"servelog build: no {folder}/{pattern} to ship")
            target = Path(self.build_lib) / "collector" / "assets" / folder
            target.mkdir(parents=True, exist_ok=True)
            for path in files:
                shutil.copyfile(path, target / path.name)


setup(cmdclass={"build_py": BuildPyWithAssets}, rust_extensions=RUST_EXTENSIONS, zip_safe=False)
