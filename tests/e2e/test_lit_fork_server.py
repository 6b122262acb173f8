"""lit_tests/fork_server.py: a client behaves as the installed tool does (output, status, stdin)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = str(Path(sys.executable).parent)


@pytest.fixture(scope="module")
def clients():
    """A started server's client directory (first on PATH), and the PATH without it."""
    if shutil.which("oi-opt", path=BIN) is None or shutil.which("filecheck", path=BIN) is None:
        pytest.skip("the console scripts are not installed (pip install -e '.[test]')")
    spec = importlib.util.spec_from_file_location("fork_server_under_test", ROOT / "lit_tests" / "fork_server.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    plain = BIN + os.pathsep + os.environ["PATH"]
    environment = dict(os.environ, PATH=plain)
    module.start(environment)
    if environment["PATH"] == plain:
        pytest.skip("the fork server did not start on this platform")
    yield environment["PATH"].split(os.pathsep)[0], plain
    for server in module._keep_alive:
        server.stdin.close()
        server.wait(timeout=30)


def run(path: str, command: list[str], stdin: str = "", directory: Path | None = None):
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=60, cwd=directory,
                          env=dict(os.environ, PATH=path))  # fmt: skip


@pytest.mark.parametrize(
    "command, stdin",
    [
        (["oi-opt", "-", "--lower-ops"], "builtin.module {}\n"),
        (["oi-opt", "kv_decode.oi", "--bind-sizes=D=2"], ""),  # a path relative to the client's directory
        (["oi-opt", "-", "--no-such-flag"], ""),
        (["oi-opt", "-"], "builtin.module { oops }\n"),
        (["filecheck", "kv_decode.oi", "--check-prefix=NONE"], "anything\n"),
        (["filecheck", "tiny_decoder.py", "--check-prefix=CHECK"], "nothing to match\n"),
    ],
)
def test_a_client_prints_and_exits_as_the_tool_does(clients, command, stdin) -> None:
    served, plain = clients
    assert shutil.which(command[0], path=served).startswith(served.split(os.pathsep)[0])
    examples = ROOT / "examples"
    expected = run(plain, command, stdin, examples)
    got = run(served, command, stdin, examples)
    assert (got.returncode, got.stdout, got.stderr) == (expected.returncode, expected.stdout, expected.stderr)


def test_an_uncaught_exception_is_reported_as_the_interpreter_does(clients) -> None:
    served, plain = clients
    command = ["filecheck", "-"]  # filecheck.main does not catch the missing check file
    expected, got = run(plain, command), run(served, command)
    assert got.returncode == expected.returncode == 1
    assert got.stderr.splitlines()[-1] == expected.stderr.splitlines()[-1]
    assert got.stderr.startswith("Traceback")
    assert run(served, ["oi-opt", "-"], "builtin.module {}\n").returncode == 0  # the server lives on


def test_a_client_without_its_server_runs_the_installed_tool(clients, tmp_path) -> None:
    served, plain = clients
    client = Path(served.split(os.pathsep)[0], "oi-opt").read_text()
    orphan = tmp_path / "oi-opt"
    orphan.write_text(client.replace("/server'", "/gone'"))
    orphan.chmod(0o755)
    got = run(plain, [str(orphan), "-"], "builtin.module {}\n")
    assert (got.returncode, got.stdout) == (0, "builtin.module {\n}\n")
