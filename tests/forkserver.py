"""Fork servers for the suite's ``kmlc`` commands and tracking workers.

Most of a test's CPU goes to starting interpreters: each ``kmlc`` command a test runs
imports Kedro, pandas and the project's libraries, and each run's tracking worker imports
MLflow (~2.5 CPU-s), again and again, on a 2-core CI machine. Here, two servers import
those modules once and fork a process per command:

- ``kmlc``: ``kmlc.cli`` and the libraries the test projects use (Kedro's pipeline and IO
  modules, pandas, scikit-learn, matplotlib). Not MLflow and not
  ``kedro.framework.project`` (which ``kedro.runner`` loads): kmlc looks at whether those
  are loaded, and the server checks that they are not;
- ``worker``: ``kmlc.tracking.worker`` and the MLflow modules it loads.

A routed command is still a process of its own, whose parent is a small client
(``python -S``, ~20 ms): the client hands the server its argv, folder, environment and
file descriptors, the server forks, and the fork takes them over (``dup2``), runs the
command and ends with its status, which the client takes as its own. Signals sent to the
client are passed on; a client that dies (a timeout's kill) takes the command with it
(SIGKILL, to the command alone: its tracking worker then ends the run as it would). So
``subprocess.run`` sees the command as it would see ``kmlc``: its output, its exit
status, its files.

What is routed (``install``): ``subprocess.run`` / ``check_output`` of the venv's ``kmlc``
script, in the test processes, and the tracking worker that ``kmlc`` starts
(``python -m kmlc.tracking.worker``), in the test processes and in the forked commands.
Not routed, they get a fresh interpreter as before: ``subprocess.Popen`` of ``kmlc``
(the tests that signal or kill a run at a chosen moment), ``kmlc import-kedro`` (two
forks share one hash seed; its output must not depend on it), and any command whose
environment changes an interpreter setting (a ``PYTHON*`` variable that differs from the
servers': ``PYTHONPATH``, ``PYTHONHASHSEED``...). ``KMLC_TEST_FORKSERVER=0`` turns it all
off (every command a fresh interpreter, as a user starts it).
"""

from __future__ import annotations

import array
import contextlib
import importlib.util
import json
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ENV = "KMLC_TEST_FORKSERVER"  # the servers' folder; "0": nothing routed
HERE = Path(__file__).resolve()
CLIENT = HERE.parent / "forkserver_client.py"
KINDS = ("kmlc", "worker")
PRELOAD = {
    "kmlc": ["kmlc.cli", "kmlc.cli.run", "kmlc.run", "kmlc.compiler.project",
             "kedro.pipeline", "kedro.io", "kedro_datasets.pandas",
             "numpy", "pandas", "sklearn", "sklearn.linear_model", "sklearn.ensemble",
             "sklearn.preprocessing", "sklearn.model_selection", "sklearn.metrics",
             "sklearn.pipeline", "scipy.stats", "matplotlib", "matplotlib.figure", "yaml",
             "cloudpickle"],
    "worker": ["kmlc.tracking.worker", "mlflow.tracking", "mlflow.pyfunc",
               "mlflow.store.tracking.sqlalchemy_store", "mlflow.store.db.utils",
               "mlflow.store.model_registry.sqlalchemy_store", "pandas", "cloudpickle"],
}
WORKER_MODULE = "kmlc.tracking.worker"
_MAX_FDS = 16


# ------------------------------------------------------------------ the test side

def kmlc_script() -> str:
    return str(Path(sys.executable).parent / "kmlc")


def _servers_python_env() -> dict[str, str]:
    """The servers' ``PYTHON*`` variables (written beside their sockets)."""
    folder = os.environ.get(ENV, "")
    try:
        return dict(json.loads(Path(folder, "env.json").read_text()))
    except (OSError, ValueError):
        return {}


def _shadows(entries: Sequence[str]) -> bool:
    """Whether a ``PYTHONPATH`` entry holds a package the servers loaded from elsewhere
    (a fork would run the loaded one), or a ``sitecustomize`` (a fork would not run it)."""
    tops = {name.split(".")[0] for names in PRELOAD.values() for name in names}
    for entry in entries:
        # code an interpreter runs as it starts, which a fork would not
        if any(Path(entry or ".", f"{n}customize.py").exists() for n in ("site", "user")):
            return True
        for top in tops:
            here = Path(entry or ".", top)
            if not (here.is_dir() or here.with_suffix(".py").is_file()):
                continue
            spec = importlib.util.find_spec(top)
            origin = Path(spec.origin).resolve() if spec and spec.origin else None
            if origin is None or here.resolve() not in (origin.parent, origin.with_suffix("")):
                return True
    return False


def _python_env_differs(env: dict[str, str] | None) -> bool:
    """Whether ``env`` (None: this process's) sets the interpreter up otherwise than a
    fork of the servers can: the fork honours ``PYTHONPATH`` (unless it shadows a package
    the servers loaded), ``PYTHONWARNINGS`` (where the servers have none),
    ``PYTHONDONTWRITEBYTECODE`` and ``PYTHONUNBUFFERED``; any other ``PYTHON*`` variable
    must be as the servers'."""
    env = dict(os.environ if env is None else env)
    theirs = _servers_python_env()
    keys = {k for k in (*env, *theirs) if k.startswith("PYTHON")}
    keys -= {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}
    if "PYTHONWARNINGS" not in theirs:
        keys.discard("PYTHONWARNINGS")
    if "PYTHONPATH" not in theirs and env.get("PYTHONPATH"):
        keys.discard("PYTHONPATH")
        if _shadows(env["PYTHONPATH"].split(os.pathsep)):
            return True
    return any(env.get(k) != theirs.get(k) for k in keys)


def _socket(kind: str) -> str | None:
    folder = os.environ.get(ENV, "")
    if not folder or folder == "0":
        return None
    path = os.path.join(folder, f"{kind}.sock")
    return path if os.path.exists(path) else None


def wait_ready(timeout: float = 120.0) -> bool:
    """Whether both servers are up, waiting up to ``timeout`` s for them to start."""
    deadline = time.monotonic() + timeout
    while not all(_socket(kind) for kind in KINDS):
        if time.monotonic() > deadline or os.environ.get(ENV, "0") == "0":
            return False
        time.sleep(0.1)
    return True


def _client_argv(kind: str, sock: str, fds: Sequence[int], argv: Sequence[str]) -> list[str]:
    return [sys.executable, "-S", "-E", str(CLIENT), sock, kind,
            ",".join(str(f) for f in fds), *argv]


def routed_kmlc(args: Any, kwargs: dict[str, Any]) -> list[str] | None:
    """The client's argv for ``subprocess.run(args, **kwargs)`` when it runs ``kmlc``."""
    if not isinstance(args, (list, tuple)) or not args or kwargs.get("shell"):
        return None
    if kwargs.get("executable") or kwargs.get("preexec_fn") or kwargs.get("pass_fds"):
        return None
    first = str(args[0])
    script = kmlc_script()
    if first != script:
        if os.sep in first:
            return None
        path = (kwargs.get("env") or os.environ).get("PATH")
        if shutil.which(first, path=path) != script:
            return None
    if len(args) > 1 and str(args[1]) == "import-kedro":
        return None
    if _python_env_differs(kwargs.get("env")):
        return None
    sock = _socket("kmlc")
    if sock is None:
        return None
    return _client_argv("kmlc", sock, (), [script, *map(str, args[1:])])


def kmlc_argv(argv: Sequence[str], env: dict[str, str] | None = None) -> list[str]:
    """``argv`` (a ``kmlc`` command) as a routed client's argv when it can be routed, for
    a ``Popen`` whose caller wants no more of the process than a fresh ``kmlc``'s exit
    status, output and files (not its children, nor its process group)."""
    return routed_kmlc(list(argv), {"env": env}) or list(argv)


def routed_worker(args: Any, kwargs: dict[str, Any]) -> list[str] | None:
    """The client's argv for the ``Popen`` of a tracking worker."""
    if (not isinstance(args, (list, tuple)) or len(args) != 4
            or list(args[:3]) != [sys.executable, "-m", WORKER_MODULE]):
        return None
    # its PYTHONPATH starts with kmlc's own folder (``Remote``), where the servers' kmlc
    # is from: not a shadow (``_shadows``), the fork puts it on sys.path
    if _python_env_differs(kwargs.get("env")):
        return None
    sock = _socket("worker")
    if sock is None:
        return None
    fds = tuple(kwargs.get("pass_fds") or ())
    return _client_argv("worker", sock, fds, [WORKER_MODULE, str(args[3])])


def install() -> None:
    """Route this process's ``kmlc`` commands and tracking workers (see the docstring)."""
    if getattr(subprocess, "_kmlc_forkserver", False):
        return
    original_run = subprocess.run
    original_popen = subprocess.Popen

    def run(*popenargs: Any, **kwargs: Any) -> Any:
        args = popenargs[0] if popenargs else kwargs.get("args")
        argv = routed_kmlc(args, kwargs)
        if argv is not None:
            if popenargs:
                popenargs = (argv, *popenargs[1:])
            else:
                kwargs["args"] = argv
        return original_run(*popenargs, **kwargs)

    class Popen(original_popen):  # type: ignore[misc,valid-type]
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            argv = routed_worker(args, kwargs)
            super().__init__(args if argv is None else argv, *rest, **kwargs)

    subprocess.run = run  # type: ignore[assignment]
    subprocess.Popen = Popen  # type: ignore[misc]
    subprocess._kmlc_forkserver = True  # type: ignore[attr-defined]


class Servers:
    """The two servers, started by the test session's first process (see conftest)."""

    def __init__(self, folder: Path, log: Path) -> None:
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []
        env = {k: v for k, v in os.environ.items() if k != ENV}
        (folder / "env.json").write_text(json.dumps(
            {k: v for k, v in env.items() if k.startswith("PYTHON")}))
        with log.open("ab") as out:
            for kind in KINDS:
                self.procs.append(subprocess.Popen(
                    [sys.executable, str(HERE), "serve", str(folder / f"{kind}.sock"), kind],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
                    start_new_session=True))

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(45)  # the commands still running get 30 s to end
            except subprocess.TimeoutExpired:
                proc.kill()


# ------------------------------------------------------------------ the server side

def _rebuild_stdio() -> None:
    """Standard streams over the fork's fds 0-2, as a fresh interpreter makes them."""
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        try:
            os.fstat(fd)
        except OSError:
            setattr(sys, name, None)
            continue
        line = name == "stderr" or os.isatty(fd)
        stream = open(fd, mode, closefd=False,  # noqa: SIM115 (the stream outlives us)
                      encoding=getattr(sys, "__" + name + "__").encoding,
                      errors="backslashreplace" if name == "stderr" else "strict",
                      buffering=1 if (line and mode == "w") else -1)
        if unbuffered and mode == "w":
            stream.reconfigure(write_through=True)
        setattr(sys, name, stream)
        setattr(sys, "__" + name + "__", stream)


def _finish(code: Any) -> None:
    """End the fork as an interpreter ends: threads joined, atexit, streams flushed."""
    import atexit
    import threading
    import traceback

    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        with contextlib.suppress(Exception):
            print(code, file=sys.stderr)
        status = 1
    try:
        threading._shutdown()  # type: ignore[attr-defined]
    except BaseException:
        traceback.print_exc()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass
    os._exit(status & 0xFF if status >= 0 else 1)


def _run_target(kind: str, argv: list[str]) -> None:
    """In the fork: run the command; never returns."""
    code: Any = 0
    try:
        if kind == "kmlc":
            sys.argv = list(argv)
            from kmlc.cli import main

            code = main()
        else:
            sys.argv = [str(Path(sys.modules[WORKER_MODULE].__file__ or "")), *argv[1:]]
            from kmlc.tracking.worker import main as worker_main

            code = worker_main(argv[1:])
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        code = 130
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    _finish(code)


def _child(kind: str, request: dict[str, Any], fds: list[int], closing: list[Any]) -> None:
    """In the fork: take over the client's fds, folder, environment; run; never returns."""
    import fcntl

    try:
        for thing in closing:
            if isinstance(thing, int):
                os.close(thing)
            else:
                thing.close()
        os.setsid()  # out of the server's process group
        for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.set_wakeup_fd(-1)
        targets = list(request["fds"])
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 200) for fd in fds]
        for fd in fds:
            os.close(fd)
        for fd in (0, 1, 2):
            if fd not in targets:
                os.close(fd)
        for fd, target in zip(high, targets, strict=True):
            os.dup2(fd, target, inheritable=True)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.dont_write_bytecode = bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))
        sys.path[:] = [request["path0"], *request["pythonpath"], *_SITE_PATH]
        _warning_options([o for o in os.environ.get("PYTHONWARNINGS", "").split(",") if o])
        _rebuild_stdio()
    except BaseException:
        import traceback

        traceback.print_exc()
        os._exit(70)
    _run_target(kind, request["argv"])


_SITE_PATH: list[str] = []
_DEFAULT_FILTERS = 0  # the warning filters an interpreter starts with (the servers had no -W)


def _warning_options(options: list[str]) -> None:
    """``PYTHONWARNINGS`` as an interpreter reads it as it starts: each option's filter
    goes in front of the default filters and behind those the loaded modules added since
    (a module's own filter wins over ``-W``), later options in front of earlier ones."""
    import warnings

    sys.warnoptions[:] = options
    for option in options:
        try:
            warnings._setoption(option)  # type: ignore[attr-defined]  # puts it first
        except warnings._OptionError as exc:  # type: ignore[attr-defined]
            print(f"Invalid -W option ignored: {exc}", file=sys.stderr)
            continue
        new, *rest = warnings.filters
        rest.insert(max(0, len(rest) - _DEFAULT_FILTERS), new)
        warnings.filters[:] = rest
        warnings._filters_mutated()  # type: ignore[attr-defined]


def serve(sock_path: str, kind: str) -> None:
    import warnings

    global _DEFAULT_FILTERS
    _DEFAULT_FILTERS = len(warnings.filters)
    parent = os.getppid()
    with contextlib.suppress(Exception):  # Linux: a test session killed takes us with it
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the line above
        return

    # the interpreter's own paths, not this script's folder nor PYTHONPATH's
    pythonpath = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    _SITE_PATH[:] = [p for p in sys.path[1:] if p not in pythonpath]
    for name in PRELOAD[kind]:
        try:
            importlib.import_module(name)
        except Exception as exc:  # a missing extra: that command imports it itself
            print(f"forkserver {kind}: could not preload {name}: {exc}", file=sys.stderr)
    if kind == "kmlc":
        loaded = {"mlflow", "kedro.framework.project"} & set(sys.modules)
        assert not loaded, f"the kmlc server must not load {sorted(loaded)}"
        install()  # the commands' tracking workers come from the worker server
    import gc

    gc.collect()
    gc.freeze()  # the forks do not scan (nor copy) what was loaded here

    tmp = sock_path + ".tmp"
    if os.path.exists(tmp):
        os.unlink(tmp)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(tmp)
    listener.listen(64)
    os.rename(tmp, sock_path)  # ready: the tests look for this name

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    stop: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C of the tests: they stop us

    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(wake_r, selectors.EVENT_READ, "wake")
    children: dict[int, socket.socket] = {}  # pid -> its client's connection

    started: dict[int, str] = {}  # pid -> what it runs, for the log

    def reap() -> None:
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            # the log: each command's CPU seconds, for a look at where the suite's time goes
            print(f"ended {pid} {usage.ru_utime + usage.ru_stime:.2f} {started.pop(pid, '')}",
                  file=sys.stderr, flush=True)
            conn = children.pop(pid, None)
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.sendall(f"exit {os.waitstatus_to_exitcode(status)}\n".encode())
                selector.unregister(conn)
                conn.close()

    deadline: float | None = None
    try:
        while not stop or (children and time.monotonic() < (deadline or 0)):
            if stop and deadline is None:  # no new commands; those running may end
                print(f"forkserver {kind}: stopping ({len(children)} running)",
                      file=sys.stderr, flush=True)
                deadline = time.monotonic() + 30
                selector.unregister(listener)
                listener.close()
                with contextlib.suppress(OSError):
                    os.unlink(sock_path)
            for key, _ in selector.select(1.0):
                if key.data == "wake":
                    try:
                        while os.read(wake_r, 512):
                            pass
                    except BlockingIOError:
                        pass
                    reap()
                elif key.data == "accept":
                    conn, _ = listener.accept()
                    try:
                        request, fds = _receive(conn)
                    except (OSError, ValueError) as exc:
                        print(f"forkserver {kind}: bad request: {exc}", file=sys.stderr)
                        conn.close()
                        continue
                    closing = [selector, listener, wake_r, wake_w, conn, *children.values()]
                    pid = os.fork()
                    if pid == 0:
                        _child(kind, request, fds, closing)
                    for fd in fds:
                        os.close(fd)
                    children[pid] = conn
                    test = request["env"].get("PYTEST_CURRENT_TEST", "").split(" ")[0]
                    started[pid] = f"{kind}: {' '.join(request['argv'][1:3])}\t{test}"
                    selector.register(conn, selectors.EVENT_READ, pid)
                    conn.sendall(f"pid {pid}\n".encode())
                else:  # the client went away before its command ended: end the command
                    conn = key.fileobj  # type: ignore[assignment]
                    try:
                        data = conn.recv(64)
                    except OSError:
                        data = b""
                    if data:
                        continue
                    pid = key.data  # as `kill -9` of the process it stands for
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                    selector.unregister(conn)
                    conn.close()
                    children.pop(pid, None)
            reap()
    except BaseException:
        import traceback

        traceback.print_exc()
        raise
    finally:
        print(f"forkserver {kind}: ended", file=sys.stderr, flush=True)
        for pid in list(children):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.unlink(sock_path)


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """One request: a length-prefixed JSON document with the client's fds attached."""
    fds = array.array("i")
    header, ancdata, _, _ = conn.recvmsg(4, socket.CMSG_SPACE(_MAX_FDS * fds.itemsize))
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - (len(data) % fds.itemsize)])
    if len(header) != 4:
        raise ValueError("short header")
    (size,) = struct.unpack("!I", header)
    body = b""
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise ValueError("short body")
        body += chunk
    return json.loads(body), list(fds)


def main(argv: Sequence[str]) -> int:
    if len(argv) == 3 and argv[0] == "serve":
        serve(argv[1], argv[2])
        return 0
    print("usage: forkserver.py serve SOCKET {kmlc,worker}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

