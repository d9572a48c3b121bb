"""Shared fixtures: the repository root and the `memplan` CLI the Python results are checked
against (MEMPLAN_BIN, else target/debug/memplan, built with cargo when missing)."""

import json
import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _find_cli():
    env = os.environ.get("MEMPLAN_BIN")
    if env:
        return pathlib.Path(env)
    for profile in ("debug", "release"):
        p = ROOT / "target" / profile / "memplan"
        if p.is_file():
            return p
    if shutil.which("cargo"):
        subprocess.run(["cargo", "build", "--quiet", "--bin", "memplan"], cwd=ROOT, check=True)
        return ROOT / "target" / "debug" / "memplan"
    return None


class Cli:
    def __init__(self, path):
        self.path = path

    def run(self, *args):
        """(exit code, stdout, stderr) of `memplan ARGS`, run from the repository root."""
        p = subprocess.run([str(self.path), *args], cwd=ROOT, capture_output=True, text=True)
        return p.returncode, p.stdout, p.stderr

    def json(self, *args):
        code, out, err = self.run(*args, "--format", "json")
        assert code in (0, 1), err
        return out

    def error(self, *args):
        """The CLI's `error:` and `hint:` lines (the command must exit 2)."""
        code, _, err = self.run(*args)
        assert code == 2, (args, err)
        lines = err.splitlines()
        error = next(line[len("error: "):] for line in lines if line.startswith("error: "))
        hint = next((line[len("hint: "):] for line in lines if line.startswith("hint: ")), None)
        return error, hint


@pytest.fixture(scope="session")
def cli():
    path = _find_cli()
    if path is None or not path.is_file():
        pytest.fail("the memplan CLI is needed to compare with (set MEMPLAN_BIN or run cargo build)")
    return Cli(path)


@pytest.fixture(scope="session")
def tinyllama_path():
    return ROOT / "tests" / "data" / "tinyllama-1.1b-config.json"


@pytest.fixture(scope="session")
def tinyllama(tinyllama_path):
    """TinyLlama 1.1B's config.json as `AutoConfig.from_pretrained(...).to_dict()` gives it."""
    return json.loads(tinyllama_path.read_text())
