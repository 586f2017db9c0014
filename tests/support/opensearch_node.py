"""A real OpenSearch node for the end-to-end suite, fetched from Maven Central and run on loopback.

OpenSearch publishes a runnable minimal distribution to Maven Central
(``org.opensearch.distribution.integ-test-zip:opensearch:<version>``, a zip with ``bin``, ``config``,
``lib`` and the core modules, no bundled JDK). :func:`distribution` fetches it once with Maven
(``mvn dependency:get``, into the local Maven repository), unpacks it once into a cache outside the
repository (``SERVELOG_E2E_CACHE``, default ``/var/tmp/servelog-e2e``), and :class:`OpenSearchNode`
starts it: single-node, bound to 127.0.0.1 on free ports, a small heap, its own config, data and log
directories, as a non-root user (the launcher refuses root: as root the node runs as
``SERVELOG_E2E_OS_USER``, default ``servelog-os``, created if missing). The node is tied to the test
process (``setpriv --pdeathsig``): a test run killed even by SIGKILL leaves no node behind. A port
taken between choosing and binding it is retried with new ports.

Environment: ``SERVELOG_E2E_VERSIONS`` (comma list), ``SERVELOG_E2E_CACHE``,
``SERVELOG_E2E_M2_REPOSITORY`` (another local Maven repository), ``SERVELOG_E2E_MAVEN_OFFLINE=1``
(no network: the suite's own failure path is tested with it), ``SERVELOG_E2E_JAVA17_HOME``,
``SERVELOG_E2E_JAVA21_HOME``.

Java: 2.x runs on Java 17; 3.x needs 21 or newer (``SERVELOG_E2E_JAVA21_HOME``, else the newest
JDK found under ``/usr/lib/jvm``).

The Index State Management plugin is not published to Maven Central (only job-scheduler is), so
the node runs without ISM; see :data:`ISM_UNAVAILABLE`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

DEFAULT_VERSIONS = ("2.19.6", "3.8.0")
"""The newest 2.19.x and 3.x distributions Maven Central served when this was written (3.9.0 was not)."""

ISM_UNAVAILABLE = (
    "the ISM plugin is not on Maven Central: `mvn dependency:get "
    "-Dartifact=org.opensearch.plugin:opensearch-index-management:2.19.6.0:zip` answers "
    "\"Could not find artifact org.opensearch.plugin:opensearch-index-management:zip:2.19.6.0 in central\" "
    "(likewise 3.x); only opensearch-job-scheduler is published"
)

_GROUP = "org.opensearch.distribution.integ-test-zip"
_ARTIFACT = "opensearch"
_STARTUP_SECONDS = 180.0


class NodeUnavailable(RuntimeError):
    """The node could not be fetched or started here (the message says why)."""


def tools_missing() -> str | None:
    """Why a local node cannot be run on this machine, or None when Java and Maven are present."""
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    return f"{' and '.join(missing)} not found" if missing else None


def requested_versions(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    raw = (os.environ if environ is None else environ).get("SERVELOG_E2E_VERSIONS", "")
    versions = tuple(v.strip() for v in raw.split(",") if v.strip())
    return versions or DEFAULT_VERSIONS


def major(version: str) -> int:
    return int(version.split(".", 1)[0])


# -- Java -------------------------------------------------------------------------------------------
def _java_version(java_home: Path) -> int | None:
    java = java_home / "bin" / "java"
    if not java.exists():
        return None
    done = subprocess.run([str(java), "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)', done.stderr)
    return int(match.group(1)) if match else None


def java_home_for(version: str) -> Path:
    """A JDK that runs this OpenSearch version (17 for 2.x, 21+ for 3.x)."""
    need = 21 if major(version) >= 3 else 17
    candidates: list[Path] = []
    for variable in ("SERVELOG_E2E_JAVA21_HOME",) if need >= 21 else ("SERVELOG_E2E_JAVA17_HOME",):
        if os.environ.get(variable):
            candidates.append(Path(os.environ[variable]))
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]))
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        candidates.extend(sorted((p for p in jvm.iterdir() if p.is_dir() and not p.is_symlink()), reverse=True))
    found = [(v, home) for home in candidates if (v := _java_version(home)) is not None and v >= need]
    if not found:
        raise NodeUnavailable(f"OpenSearch {version} needs Java {need}+; none found (set SERVELOG_E2E_JAVA21_HOME)")
    # 2.x: the oldest suitable (17 is what it is tested on); 3.x: any 21+
    return min(found)[1] if need == 17 else max(found)[1]


# -- distribution -------------------------------------------------------------------------------------
def cache_dir() -> Path:
    path = Path(os.environ.get("SERVELOG_E2E_CACHE", "/var/tmp/servelog-e2e"))
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755)
    return path


def _maven_repository() -> Path:
    return Path(os.environ.get("SERVELOG_E2E_M2_REPOSITORY", Path.home() / ".m2" / "repository"))


def fetch_zip(version: str) -> Path:
    """The distribution zip in the local Maven repository, fetched with ``mvn dependency:get``."""
    zip_path = _maven_repository() / _GROUP.replace(".", "/") / _ARTIFACT / version / f"{_ARTIFACT}-{version}.zip"
    if zip_path.exists():
        return zip_path
    command = ["mvn", "-B", "-q", "dependency:get", f"-Dartifact={_GROUP}:{_ARTIFACT}:{version}:zip", "-Dtransitive=false"]
    if os.environ.get("SERVELOG_E2E_MAVEN_OFFLINE") == "1":
        command.insert(1, "--offline")  # tests of the suite's own failure path: no network, no cache
    if os.environ.get("SERVELOG_E2E_M2_REPOSITORY"):
        command.append(f"-Dmaven.repo.local={_maven_repository()}")
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0 or not zip_path.exists():
        raise NodeUnavailable(f"Maven could not fetch {_GROUP}:{_ARTIFACT}:{version}:zip: "
                              + maven_errors(done.stdout + done.stderr))
    return zip_path


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_BOILERPLATE = ("To see the full stack trace", "Re-run Maven", "For more information about the errors", "[Help ")


def maven_errors(output: str) -> str:
    """The lines of Maven's output that say what went wrong (its advice boilerplate left out)."""
    lines = [_ANSI.sub("", line).strip() for line in output.splitlines()]
    errors = [line for line in lines if line.startswith("[ERROR] ")
              and not line.removeprefix("[ERROR] ").startswith(_BOILERPLATE)]
    return " | ".join(errors[:4]) or " | ".join(line for line in lines[-6:] if line)


def run_user() -> pwd.struct_passwd | None:
    """The user the node runs as: None when not root (the current user)."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("SERVELOG_E2E_OS_USER", "servelog-os")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                       check=True, capture_output=True)
        return pwd.getpwnam(name)


def launcher_prefix(user: pwd.struct_passwd | None) -> list[str]:
    """The command that starts the launcher as ``user`` and ties the node's life to this process.

    ``setpriv --pdeathsig TERM`` (util-linux) makes the kernel signal the node when the test process
    dies, even by SIGKILL, so a killed test run leaves no node behind; it changes the user in the same
    step. Without setpriv: ``runuser`` as root, nothing otherwise.
    """
    if shutil.which("setpriv"):
        ids = [f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"] if user is not None else []
        return ["setpriv", *ids, "--pdeathsig=TERM", "--"]
    return ["runuser", "-u", user.pw_name, "--"] if user is not None else []


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def distribution(version: str) -> Path:
    """The unpacked distribution (read-only for nodes: each has its own config, data and logs)."""
    root = cache_dir()
    home = root / f"opensearch-{version}"
    with _locked(root / f".opensearch-{version}.lock"):
        if not (home / ".complete").exists():
            zip_path = fetch_zip(version)
            shutil.rmtree(home, ignore_errors=True)
            staging = Path(tempfile.mkdtemp(dir=root, prefix=f".unpack-{version}-"))
            with zipfile.ZipFile(zip_path) as archive:
                for info in archive.infolist():
                    archive.extract(info, staging)
                    mode = (info.external_attr >> 16) & 0o777
                    if mode:
                        (staging / info.filename).chmod(mode | 0o444)
            unpacked = staging / f"opensearch-{version}"
            for path in [unpacked, *unpacked.rglob("*")]:
                if path.is_dir():
                    path.chmod(0o755)
            unpacked.rename(home)
            shutil.rmtree(staging, ignore_errors=True)
            (home / ".complete").write_text(version)
    return home


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the node ------------------------------------------------------------------------------------------
@dataclass
class OpenSearchNode:
    """One running single-node cluster. Use :meth:`start` / :meth:`stop` or as a context manager."""

    version: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    heap: str = "512m"
    url: str = ""
    workdir: Path | None = None
    _process: subprocess.Popen[bytes] | None = None

    @property
    def major(self) -> int:
        return major(self.version)

    def start(self) -> OpenSearchNode:
        """Start the node and wait until it answers; retries once on a port taken in between."""
        for attempt in range(3):
            try:
                self._start_once()
                return self
            except NodeUnavailable as exc:
                if attempt == 2 or ("BindException" not in str(exc) and "Address already in use" not in str(exc)):
                    raise
        return self

    def _start_once(self) -> None:
        home = distribution(self.version)
        java_home = java_home_for(self.version)
        user = run_user()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"servelog-os-{self.version}-"))
        config = self.workdir / "config"
        shutil.copytree(home / "config", config)
        for name in ("data", "logs", "tmp"):
            (self.workdir / name).mkdir()
        # the launcher runs from the (read-only) home: point its relative GC log, error file and heap
        # dump paths at this node's own directories
        options = (config / "jvm.options").read_text()
        options = options.replace("file=logs/", f"file={self.workdir}/logs/")
        options = options.replace("ErrorFile=logs/", f"ErrorFile={self.workdir}/logs/")
        options = options.replace("HeapDumpPath=data", f"HeapDumpPath={self.workdir}/data")
        (config / "jvm.options").write_text(options)
        http_port, transport_port = free_port(), free_port()
        node_settings: dict[str, Any] = {
            "cluster.name": f"servelog-e2e-{os.getpid()}",
            "node.name": "e2e",
            "discovery.type": "single-node",
            "network.host": "127.0.0.1",
            "http.port": http_port,
            "transport.port": transport_port,
            "path.data": str(self.workdir / "data"),
            "path.logs": str(self.workdir / "logs"),
            "cluster.routing.allocation.disk.threshold_enabled": False,
            "action.auto_create_index": True,
        }
        node_settings.update(self.settings)
        (config / "opensearch.yml").write_bytes(b"".join(
            orjson.dumps(key) + b": " + orjson.dumps(value) + b"\n" for key, value in node_settings.items()))
        if user is not None:
            for path in [self.workdir, *self.workdir.rglob("*")]:
                os.chown(path, user.pw_uid, user.pw_gid)
        self.workdir.chmod(0o755)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "OPENSEARCH_JAVA_HOME": str(java_home),
            "OPENSEARCH_PATH_CONF": str(config),
            "OPENSEARCH_JAVA_OPTS": f"-Xms{self.heap} -Xmx{self.heap} -Djava.io.tmpdir={self.workdir / 'tmp'}",
            "OPENSEARCH_TMPDIR": str(self.workdir / "tmp"),
            "HOME": str(self.workdir),
        }
        stdout = (self.workdir / "stdout.log").open("wb")
        command = [*launcher_prefix(user), str(home / "bin" / "opensearch")]
        if command[0] == "runuser":
            command[4:4] = ["env", *(f"{k}={v}" for k, v in env.items())]
        self._process = subprocess.Popen(command, env=env, stdout=stdout, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        stdout.close()
        self.url = f"http://127.0.0.1:{http_port}"
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _STARTUP_SECONDS
        last = ""
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise NodeUnavailable(f"OpenSearch {self.version} exited with {self._process.returncode}: {self.output_tail()}")
            try:
                health = self.request("GET", "/_cluster/health?wait_for_status=yellow&timeout=2s")
                if health.get("status") in ("green", "yellow"):
                    return
            except (OSError, urllib.error.URLError, ValueError) as exc:
                last = str(exc)
            time.sleep(0.5)
        raise NodeUnavailable(f"OpenSearch {self.version} not ready after {_STARTUP_SECONDS}s ({last}): {self.output_tail()}")

    def output_tail(self, lines: int = 15) -> str:
        if self.workdir is None or not (self.workdir / "stdout.log").exists():
            return ""
        text = (self.workdir / "stdout.log").read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def request(self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200, 201)) -> Any:
        """A raw REST call, for test set-up and assertions (never through servelog's client)."""
        data = None if body is None else (body if isinstance(body, bytes) else orjson.dumps(body))
        headers = {"Content-Type": "application/x-ndjson" if isinstance(body, bytes) else "application/json"}
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                payload = response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            payload, status = exc.read(), exc.code
        parsed = orjson.loads(payload) if payload else {}
        if status not in ok:
            raise ValueError(f"{method} {path} -> {status}: {payload[:500]!r}")
        return parsed

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> OpenSearchNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
