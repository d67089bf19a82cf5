"""A real gateway process for pyarrow's Flight client: built by scripts/test, started here on a
free port in a throwaway directory, stopped at the end."""

import contextlib
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


@contextlib.contextmanager
def start_gateway(directory, config=None):
    """A gateway in `directory` (data in `directory/data`), with `config` text if given."""
    directory = pathlib.Path(directory)
    (directory / "data").mkdir(parents=True, exist_ok=True)
    # A hidden file no listing shows: the embedded default writes its sample only into an
    # empty data folder, and these tests bring their own data.
    (directory / "data" / ".keep").touch()
    args = [_bin("gateway"), "--listen", "127.0.0.1:0"]
    if config is not None:
        (directory / "gateway.toml").write_text(config)
        args += ["--config", str(directory / "gateway.toml")]
    log = open(directory / "gateway.log", "w")
    proc = subprocess.Popen(args, cwd=directory, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        line = proc.stdout.readline().strip()
        prefix = "gateway listening on "
        if not line.startswith(prefix):
            proc.kill()
            pytest.fail(f"the gateway did not start: {line!r} {(directory / 'gateway.log').read_text()}")
        yield {"url": f"grpc://{line[len(prefix):]}", "dir": directory}
    finally:
        proc.kill()
        proc.wait()
        log.close()


@pytest.fixture
def gateway(tmp_path):
    with start_gateway(tmp_path) as gw:
        yield gw
