"""A local Neo4j 5.26 community server for machines without Docker.

Maven resolves the server's jars (``neo4j_launcher/pom.xml``) into a cache folder outside
the clone; ``LocalNeo4j.java`` runs as a single-file Java program on that classpath and
starts an embedded DBMS with Bolt on 127.0.0.1 and a free port. State lives in a store
folder: the database, the log, the pid and ``connection.json``. The store is the one named
(``--store``, ``$IDENTIGRAPH_NEO4J_DIR``), else ``.neo4j/`` of the checkout the command runs
in, found from the working directory, never from where the package was installed from: a
venv shared by several checkouts must not start or stop another checkout's server. The password is ``$NEO4J_PASSWORD`` or, when unset, a random
one kept in ``.neo4j/password`` (mode 600); it is never printed.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import neo4j

from identigraph.graph.connection import Neo4jSettings, server_version

LAUNCHER_DIR = Path(__file__).resolve().parent / "neo4j_launcher"
POM = LAUNCHER_DIR / "pom.xml"
JAVA_MAIN = LAUNCHER_DIR / "LocalNeo4j.java"
USER = "neo4j"


class LocalNeo4jError(RuntimeError):
    """The local server could not be started, reached or stopped."""


@dataclass(frozen=True)
class LocalServerStatus:
    running: bool
    uri: str | None = None
    pid: int | None = None
    version: str | None = None
    edition: str | None = None
    state_dir: Path | None = None


def cache_dir() -> Path:
    return Path(os.environ.get("IDENTIGRAPH_CACHE", Path.home() / ".cache" / "identigraph"))


def checkout_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` holding identigraph's ``pyproject.toml``."""
    for folder in (start, *start.parents):
        try:
            if re.search(r'(?m)^name\s*=\s*"identigraph"', (folder / "pyproject.toml").read_text()):
                return folder
        except (OSError, UnicodeDecodeError):
            continue
    return None


def state_dir(store: Path | None = None) -> Path:
    """``store``, else ``$IDENTIGRAPH_NEO4J_DIR``, else ``.neo4j`` of the checkout around the
    working directory, else ``.neo4j`` in the working directory."""
    if store is not None:
        return Path(store).absolute()
    configured = os.environ.get("IDENTIGRAPH_NEO4J_DIR")
    if configured:
        return Path(configured).absolute()
    here = Path.cwd().absolute()
    return (checkout_root(here) or here) / ".neo4j"


def _require_tool(name: str, why: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise LocalNeo4jError(
            f"`{name}` was not found on PATH; {why}. Install it (Java 17+ and Maven), "
            "or run Neo4j with `docker compose up -d` and set NEO4J_URI."
        )
    return path


def resolve_classpath() -> str:
    """The server's classpath, resolved once per pom version and cached outside the clone."""
    pom_hash = hashlib.sha256(POM.read_bytes()).hexdigest()[:16]
    cached = cache_dir() / f"neo4j-classpath-{pom_hash}.txt"
    if cached.exists():
        classpath = cached.read_text().strip()
        if classpath and all(Path(p).exists() for p in classpath.split(os.pathsep)):
            return classpath
    mvn = _require_tool("mvn", "Maven resolves the Neo4j jars from Maven Central")
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    result = subprocess.run(
        [
            mvn, "-B", "-q", "-f", str(POM),
            f"-Dmaven.repo.local={cache_dir() / 'm2'}",
            "dependency:build-classpath", f"-Dmdep.outputFile={tmp}",
        ],
        capture_output=True, text=True,
    )
    if result.returncode != 0 or not tmp.exists():
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise LocalNeo4jError(
            "Maven could not resolve the Neo4j 5.26 jars from Maven Central "
            f"(exit {result.returncode}). Check network access to repo1.maven.org.\n{tail}"
        )
    tmp.replace(cached)
    return cached.read_text().strip()


def _password(directory: Path) -> str:
    from_env = os.environ.get("NEO4J_PASSWORD", "")
    path = directory / "password"
    if from_env:
        password = from_env
    elif path.exists():
        password = path.read_text().strip()
    else:
        password = secrets.token_urlsafe(18)
    if len(password) < 8:
        raise LocalNeo4jError("NEO4J_PASSWORD must have 8 characters or more for Neo4j 5.")
    path.write_text(password)
    path.chmod(0o600)
    return password


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _our_pid(directory: Path) -> int | None:
    """The pid in the pid file when that process is alive and is our launcher serving this
    store (a pid file copied with a checkout names another store's server)."""
    pid_file = directory / "pid"
    if not pid_file.exists():
        return None
    try:
        pid = int(pid_file.read_text().strip())
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (ValueError, OSError):
        return None
    home = os.fsencode(directory / "data")
    serves_this_store = any(a.endswith(b"LocalNeo4j") or a.endswith(b"LocalNeo4j.java") for a in arguments) and \
        any(a == b"--home" and b == home for a, b in zip(arguments, arguments[1:]))
    return pid if serves_this_store else None


def _settings_from_state(directory: Path) -> Neo4jSettings | None:
    try:
        connection = json.loads((directory / "connection.json").read_text())
        password = (directory / "password").read_text().strip()
    except (OSError, ValueError):
        return None
    return Neo4jSettings(uri=connection["uri"], user=connection["user"], password=password)


def running_settings(store: Path | None = None) -> Neo4jSettings | None:
    """Connection settings of the local server when its process is alive."""
    directory = state_dir(store)
    if _our_pid(directory) is None:
        return None
    return _settings_from_state(directory)


def status(store: Path | None = None) -> LocalServerStatus:
    directory = state_dir(store)
    pid = _our_pid(directory)
    settings = _settings_from_state(directory) if pid else None
    if pid is None or settings is None:
        return LocalServerStatus(running=False, state_dir=directory)
    try:
        with settings.driver() as driver:
            version, edition = server_version(driver)
    except (neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError, OSError):
        return LocalServerStatus(running=False, pid=pid, uri=settings.uri, state_dir=directory)
    return LocalServerStatus(True, settings.uri, pid, version, edition, directory)


def start(timeout_s: float = 240.0, heap: str | None = None, page_cache_mb: int | None = None,
          lock_timeout_s: float | None = None, store: Path | None = None) -> LocalServerStatus:
    """Start the server unless it already runs; return once Bolt answers a query.

    ``lock_timeout_s`` (else ``$IDENTIGRAPH_NEO4J_LOCK_TIMEOUT_S``, else none): a transaction
    that waits longer for a lock fails with a transient error the driver retries."""
    directory = state_dir(store)
    current = status(directory)
    if current.running:
        return current
    if current.pid is not None:
        raise LocalNeo4jError(
            f"A local Neo4j process (pid {current.pid}) is alive but does not answer on "
            f"{current.uri}; run `make neo4j-stop` and start again."
        )
    java = _require_tool("java", "the local Neo4j runs on Java 17+")
    (directory / "data").mkdir(parents=True, exist_ok=True)
    classpath = resolve_classpath()
    password = _password(directory)
    password_marker = directory / "data" / "password-applied"
    password_digest = hashlib.sha256(password.encode()).hexdigest()
    password_known = password_marker.exists() and password_marker.read_text().strip() == password_digest
    port = _free_port()
    heap = heap or os.environ.get("IDENTIGRAPH_NEO4J_HEAP", "2g")
    page_cache_mb = page_cache_mb or int(os.environ.get("IDENTIGRAPH_NEO4J_PAGECACHE_MB", "1024"))
    lock_timeout_s = lock_timeout_s if lock_timeout_s is not None else float(
        os.environ.get("IDENTIGRAPH_NEO4J_LOCK_TIMEOUT_S", "0"))
    log_path = directory / "server.log"
    log_offset = log_path.stat().st_size if log_path.exists() else 0
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [
                java, f"-Xmx{heap}", "-XX:+UseG1GC", *_launcher(classpath),
                "--home", str(directory / "data"), "--port", str(port),
                "--page-cache-mb", str(page_cache_mb), "--lock-timeout-ms", str(round(lock_timeout_s * 1000)),
                *(["--password-already-set"] if password_known else []),
            ],
            env={**os.environ, "NEO4J_PASSWORD": password},
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives `make neo4j-start`; stopped by pid
        )
    (directory / "pid").write_text(str(process.pid))
    uri = f"bolt://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalNeo4jError(
                f"The local Neo4j exited with code {process.returncode} while starting; "
                f"see {log_path}:\n{_log_tail(log_path, log_offset)}"
            )
        if "READY " in _log_tail(log_path, log_offset, lines=200):
            break
        time.sleep(0.1)
    else:
        _terminate(process.pid)
        raise LocalNeo4jError(f"The local Neo4j did not start within {timeout_s:.0f}s; see {log_path}.")
    (directory / "connection.json").write_text(json.dumps({"uri": uri, "user": USER}))
    settings = Neo4jSettings(uri=uri, user=USER, password=password)
    try:
        with settings.driver() as driver:
            driver.verify_connectivity()
            version, edition = server_version(driver)
    except neo4j.exceptions.AuthError:
        if not password_known:
            raise
        # The store's password was changed behind our back (Neo4j Browser): set ours again.
        stop(store=directory)
        password_marker.unlink()
        return start(timeout_s, heap, page_cache_mb, lock_timeout_s, directory)
    password_marker.write_text(password_digest)
    return LocalServerStatus(True, uri, process.pid, version, edition, directory)


def _launcher(classpath: str) -> list[str]:
    """``-cp … LocalNeo4j``: the launcher compiled once per source into the cache (a start
    1.3 s sooner than the single-file source launch, which compiles on every start), or the
    source itself where there is no javac."""
    javac = shutil.which("javac")
    if javac is None:
        return ["-cp", classpath, str(JAVA_MAIN)]
    source_hash = hashlib.sha256(JAVA_MAIN.read_bytes() + classpath.encode()).hexdigest()[:16]
    classes = cache_dir() / f"launcher-{source_hash}"
    if not (classes / "LocalNeo4j.class").exists():
        tmp = classes.with_name(f"{classes.name}.{os.getpid()}.tmp")
        result = subprocess.run([javac, "-d", str(tmp), "-cp", classpath, str(JAVA_MAIN)],
                                capture_output=True, text=True)
        if result.returncode:
            shutil.rmtree(tmp, ignore_errors=True)
            return ["-cp", classpath, str(JAVA_MAIN)]  # the source launch reports the error
        try:
            tmp.replace(classes)
        except OSError:  # another start compiled the same source meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
    return ["-cp", f"{classpath}{os.pathsep}{classes}", "LocalNeo4j"]


def stop(timeout_s: float = 90.0, store: Path | None = None) -> bool:
    """Shut the server down cleanly; True when one was running."""
    directory = state_dir(store)
    pid = _our_pid(directory)
    for name in ("pid", "connection.json"):
        (directory / name).unlink(missing_ok=True)
    if pid is None:
        return False
    _terminate(pid, timeout_s)
    return True


def _terminate(pid: int, timeout_s: float = 90.0) -> None:
    os.kill(pid, signal.SIGTERM)  # the JVM's shutdown hook closes the DBMS cleanly
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
            return
        time.sleep(0.3)
    os.kill(pid, signal.SIGKILL)
    raise LocalNeo4jError(
        f"The local Neo4j (pid {pid}) did not stop within {timeout_s:.0f}s and was killed; "
        "the next start recovers the store."
    )


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def _log_tail(path: Path, offset: int, lines: int = 20) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def run_with_server(command: list[str], store: Path | None = None) -> int:
    """Run ``command`` with this store's server up, and stop the server afterwards only if
    this call started it: a server someone started beforehand, or another checkout's, is
    left as it was. The command sees the store in ``$IDENTIGRAPH_NEO4J_DIR``. Returns its
    exit status."""
    directory = state_dir(store)
    started_here = not status(directory).running
    if started_here:
        start(store=directory)
    try:
        return subprocess.call(command, env={**os.environ, "IDENTIGRAPH_NEO4J_DIR": str(directory)})
    finally:
        if started_here:
            stop(store=directory)
