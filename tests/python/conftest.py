"""A real gateway process for pyarrow's Flight client: built by scripts/test, started here on a
free port in a throwaway directory, stopped at the end."""

import os
import pathlib
import subprocess

import pytest


def _bin(name):
    d = os.environ.get("MOVER_BIN_DIR")
    if not d:
        d = pathlib.Path(__file__).resolve().parents[2] / "target" / "debug"
    path = pathlib.Path(d) / name
    if not path.exists():
        pytest.fail(f"{path} is missing: build it with `cargo build --workspace --bins` (scripts/test does)")
    return str(path)


@pytest.fixture
def gateway(tmp_path):
    (tmp_path / "data").mkdir()
    proc = subprocess.Popen(
        [_bin("gateway"), "--listen", "127.0.0.1:0"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline().strip()
    prefix = "gateway listening on "
    if not line.startswith(prefix):
        proc.kill()
        pytest.fail(f"the gateway did not start: {line!r} {proc.stderr.read()}")
    addr = line[len(prefix):]
    yield {"url": f"grpc://{addr}", "dir": tmp_path}
    proc.kill()
    proc.wait()
