"""A team's MLflow: a real PostgreSQL (Debian's packages) behind `mlflow server` on 127.0.0.1.

The test starts its own PostgreSQL cluster in a temporary folder, an MLflow server on it,
logs a run through ganlab's tracking module and reads it back through the REST API and
straight from PostgreSQL.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from ganlab import tracking

INITDB = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not INITDB, reason="PostgreSQL is not installed (Debian: postgresql)"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the `postgres` user when root."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def wait_for(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {seconds} s")


@pytest.fixture
def postgres():
    """A fresh PostgreSQL cluster on 127.0.0.1 with a database `mlflow`; yields its URI."""
    pytest.importorskip("psycopg", reason="psycopg (pip install -e '.[team]') is missing")
    bin_dir = Path(INITDB[-1]).parent
    # the server runs as postgres, which can't enter pytest's private tmp folders
    folder = Path(tempfile.mkdtemp(prefix="ganlab-pg-"))
    folder.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", free_port()
    subprocess.run(
        as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log")]
    subprocess.run(as_postgres([*pg_ctl, "-o", options, "-w", "start"]), check=True)
    try:
        client = ["-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]
        subprocess.run([str(bin_dir / "createdb"), *client, "mlflow"], check=True)
        yield f"postgresql://postgres@127.0.0.1:{port}/mlflow", bin_dir, port
    finally:
        subprocess.run(as_postgres([*pg_ctl, "-m", "fast", "-w", "stop"]), check=False)
        shutil.rmtree(folder, ignore_errors=True)


def test_runs_go_to_an_mlflow_server_on_postgresql(postgres, tmp_path, monkeypatch):
    uri, bin_dir, pg_port = postgres
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            uri,
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "server.log").open("w"),
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for(f"{base}/health")
        except AssertionError as error:
            log = (tmp_path / "server.log").read_text()[-3000:]
            raise AssertionError(f"{error}:\n{log}") from error
        monkeypatch.setenv("MLFLOW_TRACKING_URI", base)
        monkeypatch.setenv("DVC_EXP_NAME", "team-run")
        run_id = tracking.new_run({"lr": 0.0005, "model": "dcgan"}, "fallback")
        picture = tmp_path / "samples.png"
        picture.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
        with tracking.open_run(run_id):
            tracking.log_metrics({"fid": 42.5})
            tracking.log_artifact(picture, "render")

        query = urllib.parse.urlencode({"run_id": run_id})
        with urllib.request.urlopen(f"{base}/api/2.0/mlflow/runs/get?{query}") as response:
            run = json.load(response)["run"]
        assert run["info"]["run_name"] == "team-run" and run["info"]["status"] == "FINISHED"
        assert {m["key"]: m["value"] for m in run["data"]["metrics"]} == {"fid": 42.5}
        assert {"key": "lr", "value": "0.0005"} in run["data"]["params"]
        listing = urllib.parse.urlencode({"run_id": run_id, "path": "render"})
        with urllib.request.urlopen(f"{base}/api/2.0/mlflow/artifacts/list?{listing}") as response:
            assert [f["path"] for f in json.load(response)["files"]] == ["render/samples.png"]
        sql = f"select name, status from runs where run_uuid = '{run_id}'"
        client = ["-h", "127.0.0.1", "-p", str(pg_port), "-U", "postgres", "-d", "mlflow"]
        stored = subprocess.run(
            [str(bin_dir / "psql"), *client, "-tAc", sql],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        assert stored == "team-run|FINISHED"  # the run lives in PostgreSQL
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
