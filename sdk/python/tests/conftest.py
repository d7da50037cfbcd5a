import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.dirname(HERE)
SDK = os.path.dirname(PKG)
TESTDATA = os.path.join(SDK, "testdata")
SCHEMAS = os.path.join(os.path.dirname(SDK), "schemas")
sys.path.insert(0, PKG)

import sluice_sdk as sluice  # noqa: E402


def fixture(name):
    with open(os.path.join(TESTDATA, name + ".bin"), "rb") as f:
        return f.read()


def frame_bytes(frame):
    return sluice.encode_frame(frame)


class Run:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.raw = proc.stdout
        self.stderr = proc.stderr.decode("utf-8", "replace")
        self.frames = sluice.read_frames(proc.stdout)

    def kinds(self, kind):
        return [getattr(f, kind) for f in self.frames if f.WhichOneof("kind") == kind]

    def result_bytes(self):
        return sorted(sluice.encode_frame(f) for f in self.frames if f.WhichOneof("kind") == "result")


def run_worker(args, data, timeout=60):
    """Run a worker process, feed it `data` on stdin, return its frames, stderr and exit code."""
    env = dict(os.environ, PYTHONPATH=PKG)
    proc = subprocess.run([sys.executable] + args, input=data, capture_output=True,
                          timeout=timeout, env=env)
    return Run(proc)


@pytest.fixture
def handlers():
    return os.path.join(HERE, "handlers.py")
