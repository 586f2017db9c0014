"""``pip install .`` is a working install: the wheel carries the setup assets, and `servelog setup` runs from it.

The wheel is built from a copy of the sources (the checkout stays clean) without network
(``--no-build-isolation``: the test environment's setuptools), installed without its dependencies
into a fresh virtual environment, which borrows them from this one through a ``.pth`` path entry (a
plain path: the editable install of this checkout is not activated there). Then the installed
``servelog`` runs ``setup --dry-run`` against the loopback OpenSearch, from a directory outside the
checkout and without ``SERVELOG_ASSETS_DIR``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.opensearch_server import FakeOpenSearch

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "collector", "servelog", "native", "index_templates",
           "dashboards")


@dataclass(frozen=True)
class Install:
    source: Path
    wheel: Path
    bin: Path


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None,
        status: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240,
                          check=False)
    assert done.returncode == status, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Install:
    """servelog's wheel, built from a copy of the sources and installed in a fresh virtual environment."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "src"
    source.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "target", "_native*.so"))
        else:
            shutil.copy2(path, source / name)
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir",
        base / "dist", source, cwd=base)
    (wheel,) = (base / "dist").glob("servelog-*.whl")
    venv = base / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=base)
    run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--quiet", "--no-deps",
        "--no-index", wheel, cwd=base)
    purelib = run(venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                  cwd=base).stdout.strip()
    ours = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    (Path(purelib) / "_servelog_test_dependencies.pth").write_text("\n".join(ours) + "\n")
    return Install(source, wheel, venv / "bin")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVELOG_") and k != "PYTHONPATH"}
    return {**env, **extra}


def test_the_wheel_carries_every_template_policy_and_saved_object(installed: Install) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    for folder, pattern in (("index_templates", "*.json"), ("dashboards", "*.ndjson")):
        shipped = {p.name for p in (ROOT / folder).glob(pattern)}
        assert shipped
        packaged = {n.rsplit("/", 1)[1] for n in names if n.startswith(f"collector/assets/{folder}/")}
        assert packaged == shipped, folder
    assert not (installed.source / "collector" / "assets").exists(), "the build never writes into the source tree"


@pytest.mark.skipif(shutil.which("cargo") is None or importlib.util.find_spec("setuptools_rust") is None,
                    reason="no Rust toolchain or no setuptools-rust (the [test] extra) here: the wheel is pure Python")
def test_the_wheel_carries_the_compiled_fast_path_when_rust_is_there(installed: Install) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    assert [n for n in names if n.startswith("collector/_native") and n.endswith(".so")], names
    done = run(installed.bin / "python", "-c", "from collector.transforms import native; print(native.available())",
               cwd=installed.source.parent, env=clean_env())
    assert done.stdout.strip() == "True"


def test_servelog_setup_dry_run_works_from_a_plain_install(installed: Install, tmp_path: Path) -> None:
    where = run(installed.bin / "python", "-c",
                "import collector, collector.setup.assets as a; print(collector.__file__); print(a.assets_root())",
                cwd=tmp_path, env=clean_env()).stdout.split()
    venv = installed.bin.parent
    assert Path(where[0]).is_relative_to(venv), f"collector imported from {where[0]}, not from the installed wheel"
    assert Path(where[1]).is_relative_to(venv), f"assets found at {where[1]}, not in the installed wheel"
    with FakeOpenSearch() as fos:
        done = run(installed.bin / "servelog", "setup", "--dry-run", "--skip-dashboards", "--opensearch-url", fos.url,
                   cwd=tmp_path, env=clean_env())
        assert fos.index_templates == {} and fos.component_templates == {} and fos.ism_policies == {}
    planned = [line.split()[2] for line in done.stdout.splitlines() if line.startswith("create ")]
    expected = {p.stem.rsplit("-", 1)[0] for p in (ROOT / "index_templates").glob("servelog-*.json")}
    expected |= {p.stem.removeprefix("ism-") for p in (ROOT / "index_templates").glob("ism-*.json")}
    assert sorted(planned) == sorted(expected), done.stdout


def test_the_notebook_api_is_importable_as_servelog_from_a_plain_install(installed: Install, tmp_path: Path) -> None:
    assert "servelog/__init__.py" in zipfile.ZipFile(installed.wheel).namelist()
    done = run(installed.bin / "python", "-c", "import servelog, collector.notebook as n; print(servelog.__file__); "
               "print(servelog.deployment is n.deployment, servelog.Deployment.__name__)", cwd=tmp_path, env=clean_env())
    where, same, name = done.stdout.split()
    assert Path(where).is_relative_to(installed.bin.parent), f"servelog imported from {where}, not from the wheel"
    assert (same, name) == ("True", "Deployment")


def test_assets_dir_and_the_environment_come_before_the_packaged_assets(installed: Install, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    shutil.copytree(ROOT / "index_templates", mine / "index_templates")
    shutil.copytree(ROOT / "dashboards", mine / "dashboards")
    newer = json.loads((ROOT / "index_templates" / "servelog-logs-1.0.0.json").read_text())
    newer["_meta"]["version"] = "9.9.9"
    (mine / "index_templates" / "servelog-logs-9.9.9.json").write_text(json.dumps(newer))
    setup = (installed.bin / "servelog", "setup", "--dry-run", "--skip-dashboards")
    with FakeOpenSearch() as fos:
        by_flag = run(*setup, "--opensearch-url", fos.url, "--assets-dir", mine, cwd=tmp_path, env=clean_env())
        by_env = run(*setup, "--opensearch-url", fos.url, cwd=tmp_path, env=clean_env(SERVELOG_ASSETS_DIR=str(mine)))
    # the packaged assets hold only 1.0.0 (the test above): these runs read the given folder
    assert "servelog-logs" in by_flag.stdout and "[v9.9.9]" in by_flag.stdout
    assert "[v9.9.9]" in by_env.stdout
