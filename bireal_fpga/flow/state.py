"""What a build step is, and what it is given.

A step is a function ``step_<verb>(state, cfg) -> state``. It reads its input artefacts from
the build folder (``state.input(name)``), writes its outputs into its own staging folder
(``state.output(name)``), and returns the state with its part of the report added
(``state.with_report(...)``). It declares what it reads and writes in the step table; the
runner (:mod:`bireal_fpga.flow.runner`) hashes those inputs, skips a step whose inputs are
unchanged, and moves the outputs into the build folder only once the step has succeeded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from bireal_fpga.boards import Board
from bireal_fpga.errors import BiRealError

if TYPE_CHECKING:
    from bireal_fpga.flow.config import BuildConfig

SOURCE_MODEL = "model"  # a checkpoint or a spec: the whole pipeline
SOURCE_ONNX = "onnx"  # a qonnx.onnx of an earlier build: HW layers and folding only
SOURCE_IMPORTED = "imported"  # a QONNX file from Brevitas (any other producer): the whole pipeline


@dataclass(frozen=True)
class BuildState:
    """The build folder as one step sees it.

    Attributes:
        folder: the build folder; completed artefacts are read from here.
        staging: the folder this step writes its outputs into (moved into ``folder`` when the
            step succeeds).
        board: the board preset.
        report: the report entries of the steps before this one (read-only).
    """

    folder: Path
    staging: Path
    board: Board
    report: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    added: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def input(self, name: str) -> Path:
        """Where the artefact ``name`` (``bireal_fpga.names``) of an earlier step is."""
        return self.folder / name

    def output(self, name: str) -> Path:
        """Where this step writes its artefact ``name``."""
        return self.staging / name

    def scratch(self, name: str) -> Path:
        """A work folder for this step, removed when the step ends."""
        path = self.staging / ".scratch" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def with_report(self, **entries: Any) -> BuildState:
        """The state with ``entries`` added to this step's part of ``report.json``."""
        return dataclasses.replace(self, added=MappingProxyType({**self.added, **entries}))


class StepSkipped(BiRealError):
    """Raised by a step that cannot run here for a reason that is not an error (a tool that
    is not installed: ``bitstream`` without Vivado). The runner records the reason, writes no
    record (so a later build where the tool exists runs the step), skips the steps that need
    its outputs, prints ``<step> skipped: <reason>`` and ends the build successfully.
    ``report``: entries the step adds to ``report.json`` all the same (merged like a step's)."""

    def __init__(self, reason: str, report: Mapping[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.report = dict(report or {})


StepFn = Callable[[BuildState, "BuildConfig"], BuildState]


@dataclass(frozen=True)
class Step:
    """One row of the build's step table.

    Attributes:
        name: the step's name (``--from-step``, ``--to-step``, the report).
        run: the step function.
        reads: artefacts it reads (names from ``bireal_fpga.names``).
        writes: artefacts it writes (files or folders).
        config: the ``BuildConfig`` fields it uses (their values are part of its input hash;
            ``source`` and ``folding_config`` are hashed by content, not by path).
        board: the board preset fields it uses.
        group: the ``--until`` group it belongs to (integer, qonnx, hw, rtl).
        sources: the source kinds it applies to (``model``: a checkpoint or spec; ``onnx``: a
            ``qonnx.onnx`` of an earlier build; ``imported``: a Brevitas QONNX file).
        summary: one line for ``bireal-fpga steps``.
    """

    name: str
    run: StepFn
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    config: tuple[str, ...] = ()
    board: tuple[str, ...] = ()
    group: str = ""
    sources: tuple[str, ...] = (SOURCE_MODEL, SOURCE_ONNX, SOURCE_IMPORTED)
    summary: str = ""
