"""Fixtures for the reliability tests: a corpus of bad inputs, an in-process CLI runner that
records any traceback, subprocess helpers for kill tests, and an emulated unreadable file.

Everything is generated on the fly; models are tiny timm ``test_*`` models with random weights,
images are 16-40 px, and every fit runs on one CPU thread.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import importlib.util
import io
import logging
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from PIL import Image

torch.set_num_threads(1)  # the cores are shared; tiny models run faster on one thread

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
PYTHON = sys.executable
TINY_FIT = [
    "--model", "test_efficientnet", "--weights", "none", "--image-size", "32",
    "--batch-size", "8", "--workers", "0", "--no-progress",
]  # fmt: skip
TINY_EXTRACT = [
    "--model",
    "test_efficientnet",
    "--weights",
    "none",
    "--image-size",
    "32",
    "--workers",
    "0",
]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


messy = _load("graft_tests_data_messy", TESTS / "data" / "conftest.py")  # the data area's generator
_shared = _load("graft_tests_shared", TESTS / "conftest.py")
make_image_folder = _shared.make_image_folder

LOCKED = "alpha/locked.jpg"  # the unreadable file
BAD_FILES = {**messy.BAD, LOCKED: "permission denied"}


# ------------------------------------------------------------------------------------ corpus


def make_corpus(root: Path) -> Path:
    """An ImageFolder under a path with spaces and non-ASCII characters: 3 learnable classes
    (``red``, ``green``, ``blue``), plus the data area's messy classes ``alpha`` and ``beta`` with
    every bad-file kind (zero-byte, truncated JPEG/PNG, random bytes, HTML as .jpg, decompression
    bomb, symlink loop) and odd valid ones (16-bit/float TIFF, CMYK, palette+transparency, 1x1,
    EXIF-rotated, spaces and non-ASCII names), and one unreadable file (``alpha/locked.jpg``)."""
    make_image_folder(root, per_class=6, size=24)
    messy.make_messy_folder(root)
    locked = root / LOCKED
    Image.new("RGB", (8, 8), (1, 2, 3)).save(locked)
    locked.chmod(0)
    return root


@pytest.fixture(scope="session")
def corpus_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus, shared by the session (read-only use)."""
    return make_corpus(tmp_path_factory.mktemp("rel") / "my data é" / "photos ü")


@pytest.fixture
def corpus(corpus_session: Path, unreadable: None) -> Path:
    """The shared corpus, with ``alpha/locked.jpg`` unreadable for this test."""
    return corpus_session


@pytest.fixture
def unreadable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make files named ``locked.*`` unreadable. The file is chmod 000; tests run as root, who reads
    anything, so opening it is made to fail with EACCES as it would for any other user."""
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.path.basename(os.fspath(file)).startswith(
            "locked."
        ):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(file))
        return real_open(file, *args, **kwargs)

    if os.geteuid() == 0:
        monkeypatch.setattr(builtins, "open", guarded_open)
        monkeypatch.setattr(io, "open", guarded_open)


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def clean_folder(root: Path, per_class: int = 8, size: int = 24, seed: int = 0) -> Path:
    """A small clean ImageFolder (red/green/blue)."""
    return make_image_folder(root, per_class=per_class, size=size, seed=seed)


# ----------------------------------------------------------------------------------- the CLI


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.err

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out[-3000:]}\n--- stderr\n{self.err[-6000:]}"


def run_cli(*args: object) -> CliResult:
    """Run ``graft ARGS`` in this process like the console script: an exception that escapes
    ``graft.cli.main`` is printed as a traceback on stderr with exit code 1, as Python would."""
    from graft.cli import main

    out, err = io.StringIO(), io.StringIO()
    logger = logging.getLogger("graft")
    saved = list(logger.handlers)
    logger.handlers.clear()  # graft.log.configure binds its handler to the (redirected) stderr
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as e:  # argparse usage errors
                code = e.code if isinstance(e.code, int) else 2
            except BaseException:  # noqa: BLE001 - what the user would see
                traceback.print_exc()
                code = 1
    finally:
        logger.handlers[:] = saved
    return CliResult(int(code), out.getvalue(), err.getvalue())


def assert_clean_exit(result: CliResult, allowed: tuple[int, ...] = (0, 2)) -> None:
    """No traceback reached the user, and the exit code is success or a reported error (2)."""
    assert not result.traceback, str(result)
    assert result.code in allowed, str(result)
    if result.code == 2:
        lines = [line for line in result.err.splitlines() if ": error: " in line]
        assert lines, f"exit 2 without an error line\n{result}"


def subprocess_env() -> dict[str, str]:
    """Environment for ``python -m graft`` subprocesses: offline, one thread, repo importable."""
    env = dict(os.environ)
    env.update(
        GRAFT_OFFLINE="1",
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    return env
