from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"

# The seed article's model (fixtures/keras/seed_sigmoid_deep.py without its header): 12 sigmoid Dense
# layers, one GRD001 error at 4:11. Tests that need "a file with a finding" use this one.
SEED = """\
from tensorflow.keras.layers import Dense
from tensorflow.keras.models import Sequential
model = Sequential()
model.add(Dense(64, activation='sigmoid', input_shape=(20,)))
for _ in range(10):
    model.add(Dense(64, activation='sigmoid'))
model.add(Dense(1, activation='sigmoid'))
"""


def run_cli(*args: str, input: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real command line, as users do."""
    env = dict(os.environ, NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "gradlint", *args], input=input.decode() if input else None,
                          capture_output=True, text=True, cwd=cwd or ROOT, env=env, timeout=600)


@pytest.fixture
def cli():
    return run_cli


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-snapshots", action="store_true", default=False,
                     help="rewrite fixtures/**/*.expected from gradlint's current output (review the diff)")


@pytest.fixture
def update_snapshots(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-snapshots"))
