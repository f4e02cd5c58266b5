"""The client of ``tests/forkserver.py``: stands for one forked command.

Run as ``python -S -E forkserver_client.py SOCKET KIND EXTRA_FDS ARGV...`` (standard
library only: ~20 ms). It sends the server its argv, folder, environment and file
descriptors (0-2 and ``EXTRA_FDS``), passes on the signals it gets, and ends with the
command's status: its exit code, or the signal that ended it.
"""

import array
import contextlib
import json
import os
import signal
import socket
import struct
import sys


def main() -> None:
    sock, kind, extra_csv, *argv = sys.argv[1:]
    extra = [int(x) for x in extra_csv.split(",") if x]
    targets = []
    for fd in (0, 1, 2, *extra):
        try:
            os.fstat(fd)
        except OSError:
            continue
        targets.append(fd)
    env = dict(os.environ)
    path0 = os.path.dirname(os.path.realpath(argv[0])) if kind == "kmlc" else os.getcwd()
    pythonpath = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    body = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": env, "fds": targets,
                       "path0": path0, "pythonpath": pythonpath}).encode()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(sock)
    conn.sendmsg([struct.pack("!I", len(body))],
                 [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", targets))])
    conn.sendall(body)
    for fd in targets:  # the command holds them now (stderr kept for our own errors)
        if fd != 2:
            os.close(fd)
    reader = conn.makefile("r")
    line = reader.readline().split()
    if len(line) != 2 or line[0] != "pid":
        print(f"forkserver client: no command started ({line})", file=sys.stderr)
        sys.exit(70)
    pid = int(line[1])

    def forward(signum, frame):
        with contextlib.suppress(OSError):
            os.kill(pid, signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, forward)
    while True:
        try:
            line = reader.readline().split()
            break
        except InterruptedError:
            continue
    if len(line) != 2 or line[0] != "exit":
        print("forkserver client: the server went away", file=sys.stderr)
        sys.exit(70)
    status = int(line[1])
    if status < 0:
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
        sys.exit(128 - status)
    sys.exit(status)


main()
