"""On a real PYNQ board (marked ``board``; skipped, saying why, everywhere else): a deployment's
accelerator, loaded from its bitstream, gives exactly the outputs the deployment expects
(PyTorch's integer form of its sample images, computed by ``bireal-fpga deploy``), in batches
of 1, 7 and all; a second open reloads the bitstream and agrees.

Needs only pytest, numpy and the deployed driver (what the board has), so it runs there::

    BIREAL_DEPLOY=~/jupyter_notebooks/deploy-zcu104 python3 -m pytest tests/test_board.py -m board
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.board


def _deployment() -> Path:
    try:
        import pynq
    except ImportError:
        pytest.skip("no pynq here: the board tests run on a PYNQ board")
    if "standins" in str(getattr(pynq, "__file__", "")):
        pytest.skip("pynq is the tests' stand-in here, not a board")
    try:
        devices = list(pynq.Device.devices)
    except Exception as exc:  # noqa: BLE001 (pynq raises many kinds without a device)
        pytest.skip(f"pynq finds no device: {exc}")
    if not devices:
        pytest.skip("pynq finds no device")
    folder = os.environ.get("BIREAL_DEPLOY")
    if not folder:
        pytest.skip("BIREAL_DEPLOY names no deployment (bireal-fpga deploy BUILD --out DIR)")
    return Path(folder)


def test_the_board_gives_the_expected_outputs() -> None:
    from bireal_fpga.driver import Accelerator

    folder = _deployment()
    with np.load(folder / "samples" / "cifar10_test.npz") as z:
        images, expected = z["images"], z["expected"]
    with Accelerator.open(folder, backend="board") as acc:
        for n in (1, 7, len(images)):
            out = acc.run(images[:n])
            bad = np.flatnonzero((out != expected[:n]).reshape(n, -1).any(axis=1))
            assert not len(bad), f"{len(bad)} of {n} images differ, first image {bad[0]}"
        assert acc.stats.fps_cycles > 0 and acc.stats.cycles > 0
    with Accelerator.open(folder, backend="board", batch_size=5) as acc:
        assert np.array_equal(acc.run(images), expected)
