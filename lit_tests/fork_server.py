"""A fork server for lit: the RUN lines' `oi-opt`, `oi-run` and `filecheck` without a Python start-up each.

About 270 RUN-line commands are Python tools; each fresh interpreter spends 0.06 s (filecheck)
to 0.2 s (oi-opt: xDSL's dialects) importing before it reads its input, most of lit's CPU time.
`start()` (called by lit.cfg.py) launches one server process that imports the tools once, and
puts a directory first on the tests' PATH whose `oi-opt`, `oi-run` and `filecheck` are small
clients. A client connects to the server's Unix socket and sends its argv, working directory,
environment and its stdin/stdout/stderr descriptors (SCM_RIGHTS); the server forks, the child
takes over those descriptors and runs the tool's `main` exactly as the console script would, and
sends back the exit status, which the client exits with. So each command still runs in a
process of its own, reading and writing the pipes lit gave it; only the imports are shared.

The server holds no threads (it forks) and imports nothing that reads the environment at import
time. It exits when lit does: its stdin is a pipe whose other end only lit's processes hold.
`OI_LIT_FORK_SERVER=0` runs the installed tools instead; so does a client that cannot reach
the server.
"""

from __future__ import annotations

import array
import importlib
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

TOOLS = {
    "oi-opt": ("oi_compiler.tools.oi_opt", "main"),
    "oi-run": ("oi_compiler.tools.oi_run", "main"),
    "filecheck": ("filecheck.main", "main"),
}
# what the tools import lazily, on the paths the tests take
PRELOAD = (
    "oi_compiler.backend.llvm",
    "oi_compiler.backend.ptx",
    "oi_compiler.frontend.oi_dsl",
    "oi_compiler.graph",
    "oi_compiler.ir_context",
    "oi_compiler.lowering.step_llvm",
    "oi_compiler.pipeline",
    "oi_compiler.tools.expected_diagnostics",
    "xdsl.printer",
)

CLIENT = r'''
import array, json, os, socket, sys

def run_installed():
    os.execv(INSTALLED, [INSTALLED] + sys.argv[1:])

try:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.connect(SOCKET)
except OSError:
    run_installed()
request = json.dumps({"tool": TOOL, "argv": sys.argv[1:], "cwd": os.getcwd(),
                      "env": dict(os.environ)}).encode()
descriptors = array.array("i", [0, 1, 2])
connection.sendmsg([len(request).to_bytes(8, "little") + request],
                   [(socket.SOL_SOCKET, socket.SCM_RIGHTS, descriptors)])
reply = b""
while chunk := connection.recv(64):
    reply += chunk
if not reply:
    sys.stderr.write(TOOL + ": the fork server's child died before it finished\n")
    os._exit(134)
os._exit(int(reply))
'''


def start(environment: dict) -> None:
    """Start the server and put its clients first on `environment["PATH"]` (a lit config's)."""
    if os.environ.get("OI_LIT_FORK_SERVER", "1") == "0" or not hasattr(os, "fork"):
        return
    installed = {tool: shutil.which(tool, path=environment["PATH"]) for tool in TOOLS}
    if None in installed.values():
        return  # the tests will say what is missing
    directory = tempfile.mkdtemp(prefix="oi-lit-")
    socket_path = os.path.join(directory, "server")
    server = subprocess.Popen(
        [sys.executable, __file__, socket_path],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=environment,
    )  # fmt: skip
    ready = server.stdout.readline() == b"ready\n"
    server.stdout.close()
    if not ready:
        server.wait()
        return
    for tool, path in installed.items():
        client = os.path.join(directory, tool)
        with open(client, "w") as out:
            out.write(f"#!{sys.executable} -SI\n")
            out.write(f"TOOL, SOCKET, INSTALLED = {tool!r}, {socket_path!r}, {path!r}\n")
            out.write(CLIENT)
        os.chmod(client, 0o755)
    environment["PATH"] = directory + os.pathsep + environment["PATH"]
    # the server's stdin stays open in lit's processes; it reads EOF (and cleans up) when they end
    _keep_alive.append(server)


_keep_alive: list[subprocess.Popen] = []


# ----------------------------------------------------------------------------- the server


def serve(socket_path: str) -> None:
    mains = {tool: getattr(importlib.import_module(module), name) for tool, (module, name) in TOOLS.items()}
    for module in PRELOAD:
        importlib.import_module(module)
    from oi_compiler.passes import pass_factories

    for load in pass_factories().values():
        load()

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped as they end
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(sys.stdin, selectors.EVENT_READ)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    server = os.getpid()
    try:
        while True:
            for key, _ in selector.select():
                if key.fileobj is sys.stdin:
                    return  # lit has ended
                connection, _ = listener.accept()
                if os.fork() == 0:
                    listener.close()
                    selector.close()
                    _run_child(connection, mains)
                connection.close()
    finally:
        if os.getpid() == server:
            shutil.rmtree(os.path.dirname(socket_path), ignore_errors=True)


def _run_child(connection, mains: dict) -> None:
    """In the forked child: take the client's descriptors, run its tool, reply with its status.
    Never returns: the child must not go back to the server's loop, whatever the tool raised."""
    status = 1
    try:
        try:
            _take_over(connection)
        except BaseException:  # the server's own failure: reported on its stderr (lit's)
            sys.excepthook(*sys.exc_info())
            raise
        try:
            status = mains[sys.argv[0]]()
        except SystemExit as exit_:
            status = exit_.code
        except BaseException:  # what the interpreter does with an uncaught exception
            sys.excepthook(*sys.exc_info())
            status = 1
        if not isinstance(status, int):
            if status is not None:
                print(status, file=sys.stderr)
            status = 0 if status is None else 1
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except OSError:
                pass
        connection.sendall(str(status).encode())
    finally:
        os._exit(0)


def _take_over(connection) -> None:
    """The client's stdin/stdout/stderr, working directory, environment and argv."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the tool's own subprocesses are waited for
    message, descriptors = _receive(connection)
    while len(message) < 8 or len(message) < 8 + int.from_bytes(message[:8], "little"):
        message += connection.recv(1 << 16)
    request = json.loads(message[8:])
    for target, descriptor in enumerate(descriptors):
        os.dup2(descriptor, target)
        os.close(descriptor)
    _fresh_standard_streams()
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = [request["tool"], *request["argv"]]


def _fresh_standard_streams() -> None:
    """sys.stdin/stdout/stderr made anew on descriptors 0-2, as the interpreter makes them at start:
    the server's own objects carry the state of the pipes it was started with."""
    encoding, errors = sys.stdout.encoding, sys.stdout.errors
    sys.stdin = sys.__stdin__ = open(0, encoding=encoding, errors=errors, closefd=False)
    sys.stdout = sys.__stdout__ = open(1, "w", 1 if os.isatty(1) else -1, encoding, errors, closefd=False)
    sys.stderr = sys.__stderr__ = open(2, "w", 1, encoding, "backslashreplace", closefd=False)


def _receive(connection: socket.socket) -> tuple[bytes, list[int]]:
    """The first chunk of the request, and the descriptors sent with it."""
    descriptors = array.array("i")
    message, ancillary, _, _ = connection.recvmsg(1 << 16, socket.CMSG_SPACE(3 * descriptors.itemsize))
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            descriptors.frombytes(data[: len(data) - len(data) % descriptors.itemsize])
    return message, list(descriptors)


if __name__ == "__main__":
    serve(sys.argv[1])
