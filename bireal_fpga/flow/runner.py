"""The build runner: the step table run over one build folder, resumably.

For every step of the table (:data:`bireal_fpga.flow.steps.STEPS`) that applies to the source,
up to ``to_step``:

1. its key is the hash of everything it reads (:mod:`bireal_fpga.flow.records`);
2. if the folder holds a record with that key, and the step's outputs still have the recorded
   hashes, the step is reused (unless ``from_step`` is at or before it);
3. otherwise the records and outputs of this step and of every later step are deleted (a
   changed input never leaves outputs of the old input beside those of the new one), the step
   runs with a staging folder of its own, and only when it succeeded are its outputs moved
   into the build folder and its record written (the record last: a build killed at any
   moment resumes from the last completed step);
4. ``report.json`` is rewritten (atomically) after every step.

The fit loop: with ``target_fps = "max"``, when Yosys (the ``synth`` step) finds that the
design does not fit although the cost model said it would, the cost model's overshoot on the
resources that do not fit is written to ``fit.json`` (an input of ``folding``) and the build
continues from ``folding``, up to ``fit_iterations`` times. Every attempt is reported.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from bireal_fpga import __version__, names
from bireal_fpga.boards import Board, load_board
from bireal_fpga.errors import BiRealError
from bireal_fpga.flow.config import BuildConfig
from bireal_fpga.flow.records import (
    Record,
    artefact_digest,
    code_digest,
    digest,
    file_digest,
    read_record,
    write_json_atomic,
)
from bireal_fpga.flow.state import (
    SOURCE_IMPORTED,
    SOURCE_MODEL,
    SOURCE_ONNX,
    BuildState,
    Step,
    StepSkipped,
)

FIT_RESOURCES = ("LUT", "BRAM36", "URAM", "DSP")


class BuildError(BiRealError):
    """A build that cannot start or continue (bad folder, unknown step, a step's outputs)."""


@dataclass(frozen=True)
class BuildResult:
    """A build folder after :func:`run`: its artefacts and its report."""

    folder: Path
    report: dict[str, Any]

    def path(self, artefact: str) -> Path:
        """Where the artefact ``artefact`` (a name from ``bireal_fpga.names``) is."""
        return self.folder / artefact

    @property
    def artefacts(self) -> dict[str, Path]:
        """The artefacts the build holds now, by name."""
        return {a: self.folder / a for a in names.ARTEFACTS if (self.folder / a).exists()}


def source_kind(source: str) -> str:
    """``model`` (a checkpoint or spec), ``onnx`` (the ``qonnx.onnx`` of an earlier build: its
    producer is bireal-fpga) or ``imported`` (any other ONNX file: a Brevitas QONNX export)."""
    if not source.endswith(".onnx"):
        return SOURCE_MODEL
    try:
        stat = Path(source).stat()
    except OSError:  # a missing file: reported by the step that reads it
        return SOURCE_IMPORTED
    producer = _onnx_producer(source, stat.st_mtime_ns, stat.st_size)
    return SOURCE_ONNX if producer == "bireal-fpga" else SOURCE_IMPORTED


@functools.lru_cache(maxsize=8)
def _onnx_producer(path: str, mtime_ns: int, size: int) -> str | None:
    """The ``producer_name`` of an ONNX file, parsed once per file version (a build asks for
    the source kind several times; None if it cannot be read: the import step says why)."""
    try:
        import onnx

        return str(onnx.load(path, load_external_data=False).producer_name)
    except Exception:  # a foreign file: reported by the step that reads it
        return None


def source_digest(source: str) -> str:
    """What the build is of, by content: a file's bytes, or the resolved spec."""
    if source.endswith((".pt", ".onnx")):
        path = Path(source)
        if not path.is_file():
            raise BuildError(f"source '{source}' does not exist")
        return file_digest(path)
    from bireal_fpga.spec import load_spec  # validates the spec (SpecError naming the field)

    return digest(load_spec(source).to_dict())


def plan_steps(cfg: BuildConfig, steps: Sequence[Step]) -> list[Step]:
    """The steps of ``steps`` that apply to the source, up to ``cfg.to_step``."""
    kind = source_kind(cfg.source)
    names_all = [s.name for s in steps]
    if len(set(names_all)) != len(names_all):
        raise BuildError(f"the step table names a step twice: {names_all}")
    plan = [s for s in steps if kind in s.sources]
    known = [s.name for s in plan]
    for field, value in (("from_step", cfg.from_step), ("to_step", cfg.to_step)):
        if value is None or value in known:
            continue
        if value in names_all and kind != SOURCE_ONNX:
            raise BuildError(
                f"--{field.replace('_', '-')} '{value}': the step does not apply to an "
                f"{kind} source (its steps: {', '.join(known)})"
            )
        if value in names_all:
            raise BuildError(
                f"--{field.replace('_', '-')} '{value}': the step does not apply to a .onnx "
                "source (it has no integer form to verify the RTL against; build from the "
                "checkpoint or spec)"
            )
        raise BuildError(
            f"--{field.replace('_', '-')} '{value}' is not a step (steps: {', '.join(known)})"
        )
    if cfg.to_step is not None:
        plan = plan[: known.index(cfg.to_step) + 1]
    if cfg.from_step is not None and cfg.from_step not in [s.name for s in plan]:
        raise BuildError(f"--from-step '{cfg.from_step}' comes after --to-step '{cfg.to_step}'")
    return plan


def _check_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise BuildError(f"--out '{out}' exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / names.FLOW_DIR).is_dir():
        raise BuildError(
            f"--out '{out}' is a non-empty folder that holds no bireal-fpga build (or one of "
            "an older version): refusing to overwrite it; choose another --out"
        )


@contextlib.contextmanager
def _locked(flow_dir: Path) -> Iterator[None]:
    """One build at a time in a folder."""
    with open(flow_dir / "lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildError(
                f"build folder '{flow_dir.parent}' is in use by another build"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _seed(name: str) -> None:
    """Seed the global random generators for a step: FINN and qonnx name new tensors with
    ``random.choice`` (``qonnx.util.basic.random_string``), so without this the same inputs
    would give other tensor names, hence other bytes, in every run."""
    seed = int.from_bytes(hashlib.sha256(f"bireal-fpga/{name}".encode()).digest()[:4], "little")
    random.seed(seed)
    np.random.seed(seed)


def _merge(report: dict[str, Any], fragment: dict[str, Any]) -> None:
    """Add a step's report entries; dicts under the same key are merged one level deep."""
    for key, value in fragment.items():
        if isinstance(value, dict) and isinstance(report.get(key), dict):
            report[key] = {**report[key], **value}
        else:
            report[key] = value


class _Run:
    def __init__(
        self,
        cfg: BuildConfig,
        board: Board,
        table: Sequence[Step],
        plan: list[Step],
        log: Callable[[str], None],
    ) -> None:
        self.cfg = cfg
        self.board = board
        self.all_steps = list(table)
        self.table = [s for s in table if source_kind(cfg.source) in s.sources]
        self.plan = plan
        self.log = log
        self.folder = Path(cfg.out_dir)
        self.flow = self.folder / names.FLOW_DIR
        self.source_key = source_digest(cfg.source)
        folding = cfg.folding_config
        if folding is not None and not Path(folding).is_file():
            raise BuildError(f"folding config '{folding}' does not exist")
        self.folding_key = file_digest(Path(folding)) if folding else None
        self.stages: list[dict[str, Any]] = []
        self.skipped: list[dict[str, str]] = []  # steps skipped (StepSkipped) in this run
        self.skip_reports: list[dict[str, Any]] = []  # their report entries

    # ---- records ------------------------------------------------------------------------
    def record_path(self, step: Step) -> Path:
        return self.flow / f"{step.name}.json"

    def producer(self, artefact: str, before: int) -> Step | None:
        for step in reversed(self.table[:before]):
            if artefact in step.writes:
                return step
        return None

    def input_hash(self, artefact: str, index: int) -> str | None:
        step = self.producer(artefact, index)
        if step is None:  # an input nobody writes (fit.json, owned by the runner)
            return artefact_digest(self.folder / artefact)
        record = read_record(self.record_path(step))
        if record is None:
            raise BuildError(
                f"step '{self.table[index].name}' needs '{artefact}' from step '{step.name}', "
                "which has not run"
            )
        return record.outputs.get(artefact)

    def key(self, step: Step, index: int) -> str:
        config: dict[str, Any] = {}
        for field in step.config:
            if field == "source":
                config[field] = self.source_key
            elif field == "folding_config":
                config[field] = self.folding_key
            else:
                config[field] = getattr(self.cfg, field)
        board = asdict(self.board)
        return digest(
            {
                "step": step.name,
                "run": f"{step.run.__module__}.{step.run.__qualname__}",
                "code": code_digest(),
                "config": config,
                "board": {f: board[f] for f in step.board},
                "inputs": {a: self.input_hash(a, index) for a in step.reads},
            }
        )

    def reusable(self, step: Step, key: str) -> Record | None:
        record = read_record(self.record_path(step))
        if record is None or record.key != key:
            return None
        for artefact, want in record.outputs.items():
            if artefact_digest(self.folder / artefact) != want:
                self.log(f"[build] {step.name}: '{artefact}' changed since it was written")
                return None
        return record

    def invalidate_from(self, index: int) -> None:
        """Delete the records and outputs of ``table[index:]``: a step's outputs changed, so
        theirs belong to the old inputs. ``fit.json`` goes too when the changed step comes
        before folding (the correction belongs to the old design)."""
        for step in self.table[index:]:
            _remove(self.record_path(step))
            for artefact in step.writes:
                _remove(self.folder / artefact)
        if "folding" in [s.name for s in self.table[index:]]:
            _remove(self.folder / names.FIT)

    def prune(self, start: int) -> None:
        """Delete what the current config would not make: the records and outputs of steps
        that do not apply to this source, and, from ``table[start]`` on, those of the first
        step whose record no longer matches its inputs (and of every step after it). A build
        that stops early, or fails, thus never leaves outputs of other inputs behind."""
        applies = {s.name for s in self.table}
        for step in self.all_steps:
            if step.name not in applies:
                _remove(self.record_path(step))
                for artefact in step.writes:
                    if not any(artefact in s.writes for s in self.table):
                        _remove(self.folder / artefact)
        for index in range(start, len(self.table)):
            step = self.table[index]
            record = read_record(self.record_path(step))
            if record is None:
                for artefact in step.writes:  # outputs nobody vouches for
                    _remove(self.folder / artefact)
                continue
            try:
                key = self.key(step, index)
            except BuildError:  # an input's step has no record
                key = None
            if key != record.key:
                self.invalidate_from(index)
                return

    # ---- report ---------------------------------------------------------------------------
    def report(self, done: list[Step]) -> dict[str, Any]:
        report: dict[str, Any] = {
            "version": __version__,
            "code": code_digest(),
            "source": self.cfg.source,
            "board": asdict(self.board),
            "config": self.cfg.to_dict(),
            "stages": list(self.stages),
        }
        for step in done:
            record = read_record(self.record_path(step))
            if record is not None:
                _merge(report, record.report)
        fit = self.folder / names.FIT
        if fit.is_file():
            report["fit_loop"] = json.loads(fit.read_text())
        ran = {s.name for s in done}
        report["missing_stages"] = [s.name for s in self.table if s.name not in ran]
        report["complete"] = not report["missing_stages"]
        for fragment in self.skip_reports:
            _merge(report, fragment)
        if self.skipped:
            report["skipped"] = list(self.skipped)
        return report

    def write_report(self, done: list[Step]) -> dict[str, Any]:
        last = self.table.index(self.plan[-1]) if self.plan else -1
        self.prune(last + 1)
        report = self.report(done)
        write_json_atomic(self.folder / names.REPORT, report)
        return report

    # ---- steps ----------------------------------------------------------------------------
    def run_step(self, step: Step, index: int, key: str, done: list[Step]) -> None:
        staging = self.flow / "staging" / step.name
        _remove(staging)
        staging.mkdir(parents=True)
        state = BuildState(
            folder=self.folder,
            staging=staging,
            board=self.board,
            report=MappingProxyType(self.report(done)),
        )
        t0 = time.perf_counter()
        _seed(step.name)
        try:
            out = step.run(state, self.cfg)
            missing = [a for a in step.writes if not (staging / a).exists()]
            if missing:
                raise BuildError(f"step '{step.name}' did not write '{missing[0]}'")
            extra = sorted(
                p.name
                for p in staging.iterdir()
                if p.name not in step.writes and p.name != ".scratch"
            )
            if extra:
                raise BuildError(
                    f"step '{step.name}' wrote '{extra[0]}', which it does not declare"
                )
            _remove(staging / ".scratch")
            outputs = {a: artefact_digest(staging / a) for a in step.writes}
            old = read_record(self.record_path(step))
            if old is None or old.outputs != outputs:  # later steps read other inputs now
                self.invalidate_from(index + 1)
            _remove(self.record_path(step))
            for artefact in step.writes:
                target = self.folder / artefact
                _remove(target)
                os.replace(staging / artefact, target)
            seconds = time.perf_counter() - t0
            record = Record(step.name, key, outputs, dict(out.added), seconds)
            write_json_atomic(self.record_path(step), record.to_dict())
        finally:
            _remove(staging)
        self.stages.append({"name": step.name, "seconds": seconds, "reused": False})

    def skip(
        self,
        step: Step,
        reason: str,
        unavailable: dict[str, str],
        report: dict[str, Any] | None = None,
    ) -> None:
        """Record a skipped step (no record, no outputs: a later build runs it)."""
        self.invalidate_from(self.table.index(step))
        self.skip_reports.append(report or {})
        for artefact in step.writes:
            unavailable[artefact] = step.name
        self.skipped.append({"name": step.name, "reason": reason})
        self.stages.append({"name": step.name, "seconds": 0.0, "reused": False, "skipped": reason})
        self.log(f"[build] {step.name} skipped: {reason}")

    def fit_again(self, done: list[Step]) -> bool:
        """After ``synth``: whether the fit loop folds again (and ``fit.json`` says how)."""
        cfg = self.cfg
        if cfg.target_fps != "max" or cfg.cost_model != "rtl" or not cfg.synth:
            return False
        report = self.report(done)
        rtl = report.get("rtl") or {}
        if rtl.get("fits") is not False:
            return False
        fit_file = self.folder / names.FIT
        fit = json.loads(fit_file.read_text()) if fit_file.is_file() else {}
        history = list(fit.get("iterations", []))
        yosys = rtl["resources"]["total"]
        estimated = report["estimates"]["total_uncorrected"]
        correction = dict(fit.get("correction", {}))
        over = [r for r in FIT_RESOURCES if yosys.get(r, 0) > self.board.resources.get(r, 0)]
        history.append(
            {
                "fps_estimated": report["estimates"]["fps"],
                "cost_model": {r: estimated.get(r, 0) for r in FIT_RESOURCES},
                "yosys": {r: yosys.get(r, 0) for r in FIT_RESOURCES},
                "over": over,
                "fits": False,
            }
        )
        if len(history) > cfg.fit_iterations:
            self.log(
                f"[build] Yosys: the design does not fit {self.board.name} ({', '.join(over)}); "
                f"no refolding left (fit_iterations = {cfg.fit_iterations})"
            )
            write_json_atomic(fit_file, {**fit, "iterations": history})
            return False
        for r in over:
            ratio = yosys[r] / max(estimated.get(r, 0), 1e-9)
            correction[r] = max(correction.get(r, 1.0), ratio)
        write_json_atomic(fit_file, {"correction": correction, "iterations": history})
        self.log(
            f"[build] Yosys: the design does not fit {self.board.name} ("
            + ", ".join(f"{r} {yosys[r]:.0f} of {self.board.resources[r]}" for r in over)
            + "); folding again with the cost model corrected by "
            + ", ".join(f"{r} x{correction[r]:.3f}" for r in over)
        )
        return True

    def go(self) -> dict[str, Any]:
        from_index = (
            [s.name for s in self.plan].index(self.cfg.from_step)
            if self.cfg.from_step is not None
            else len(self.plan)
        )
        done: list[Step] = []
        index = 0
        self.prune(len(self.table))  # records of steps that do not apply to this source
        unavailable: dict[str, str] = {}  # artefact -> the skipped step that writes it
        while index < len(self.plan):
            step = self.plan[index]
            tindex = self.table.index(step)
            needs = [a for a in step.reads if a in unavailable]
            if needs:
                reason = f"needs '{needs[0]}' of the skipped step '{unavailable[needs[0]]}'"
                self.skip(step, reason, unavailable)
                index += 1
                continue
            key = self.key(step, tindex)
            record = self.reusable(step, key) if index < from_index else None
            tag = f"[build] {index + 1}/{len(self.plan)} {step.name}"
            if record is not None:
                self.log(f"{tag}: inputs unchanged, reused")
                self.stages.append({"name": step.name, "seconds": record.seconds, "reused": True})
            else:
                self.log(f"{tag} ...")
                try:
                    self.run_step(step, tindex, key, done)
                except StepSkipped as skipped:
                    self.skip(step, str(skipped), unavailable, skipped.report)
                    self.write_report(done)
                    index += 1
                    continue
                except BaseException:
                    self.prune(tindex)  # the failed step's old outputs belong to other inputs
                    self.write_report(done)
                    raise
            done.append(step)
            self.write_report(done)
            if step.name == "synth" and record is None and self.fit_again(done):
                index = [s.name for s in self.plan].index("folding")
                done = done[:index]
                from_index = min(from_index, index)
                continue
            index += 1
        return self.write_report(done)


def _html_report(folder: Path, log: Callable[[str], None]) -> None:
    """``report.html`` from the ``report.json`` of the build (also of a failed one)."""
    if not (folder / names.REPORT).is_file():
        return
    try:
        from bireal_fpga.report.html import write_html_report

        write_html_report(folder)
    except Exception as exc:  # the report for people must never hide the build's own result
        log(f"[build] report.html not written: {type(exc).__name__}: {exc}")


def run(
    cfg: BuildConfig,
    *,
    steps: Sequence[Step] | None = None,
    log: Callable[[str], None] = print,
) -> BuildResult:
    """Build ``cfg`` (see :class:`BuildConfig`); ``steps``: the step table (default
    :data:`bireal_fpga.flow.steps.STEPS`; add, replace or drop rows to change the flow)."""
    from bireal_fpga.flow.steps import STEPS

    table = list(STEPS if steps is None else steps)
    board = load_board(cfg.board)  # validates the board before anything is written
    cfg = cfg.replace(board=board.name)
    if cfg.target_fps is None:  # the board's default
        cfg = cfg.replace(target_fps=str(board.target_fps))
    plan = plan_steps(cfg, table)
    out = Path(cfg.out_dir)
    _check_folder(out)
    runner = _Run(cfg, board, table, plan, log)  # validates source and folding config
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    runner.flow.mkdir(exist_ok=True)
    try:
        with _locked(runner.flow):
            _remove(runner.flow / "staging")
            cfg.save(out / names.CONFIG)
            try:
                report = runner.go()
            finally:
                _html_report(out, log)
    except BaseException:
        if created and not any(runner.flow.glob("*.json")):  # nothing made: leave nothing
            shutil.rmtree(out, ignore_errors=True)
        raise
    return BuildResult(out, report)
