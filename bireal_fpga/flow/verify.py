"""``verify``: every stage of a build against the PyTorch integer form, streaming; and ``sim``.

The reference is the PyTorch integer inference form of the build's float model
(``model.pt``), derived afresh (an imported build: read afresh from its ``source.onnx``).
The stages (:data:`STAGES`, one row each; later issues add rows) are:

``source``   an imported build's QONNX file as the user gave it (``source.onnx``), executed
             by ONNX's reference evaluator in float64 with QONNX's quantizers; each layer
             divided by its scale (:mod:`bireal_fpga.importer.source`)
``pytorch``  the build's stored ``integer.npz`` run by the PyTorch integer form (catches a
             stale or foreign integer form)
``golden``   the numpy golden model on ``integer.npz``
``python``   FINN's python execution of the HW-layer graph ``hw.onnx``
``rtlsim``   the stitched RTL (``rtl/``) in Verilator (the compiled model in ``sim/``)
``cppsim``   every node of the folded graph (``folded.onnx``) in finn-hlslib C++ compiled with
             g++ (:mod:`bireal_fpga.cppsim`); a mismatch also names the first node whose C++
             differs from FINN's python execution of it

Images stream through every stage in batches; only counts and the first mismatch are kept
(:class:`bireal_fpga.flow.compare.Tally`), so memory does not grow with the number of images.
Stages that record every layer (``trace``) are compared layer by layer; the RTL is compared
on its outputs, and its first wrong image is replayed with the layer outputs recorded inside
the design, so that every stage names the first differing layer. Also reported: how often the
float training form's top-1 agrees with the integer form's.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from bireal_fpga import names
from bireal_fpga.errors import BiRealError
from bireal_fpga.flow.compare import Tally, Trace, first_difference

TRACE_BATCH = 32  # images per batch of the layer-by-layer stages (traces are large)
RTL_IMAGES_PER_JOB = 128  # images per simulator process and batch (start-up is amortized)


class VerifyError(BiRealError):
    """A build folder or image source that cannot be verified."""


# ---- images ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Images:
    """``n`` uint8 NCHW images, read in batches: random (seeded, image ``i`` drawn from
    ``(seed, i)`` so batches do not change them), or the test split of a data path, or an
    ``.npz`` holding ``images`` [N, C, H, W]."""

    shape: tuple[int, int, int]
    n: int
    source: str  # "random" or the path
    _get: Callable[[int, int], np.ndarray]

    def batch(self, start: int, stop: int) -> np.ndarray:
        return self._get(start, min(stop, self.n))

    def batches(self, size: int) -> Iterator[tuple[int, np.ndarray]]:
        for start in range(0, self.n, size):
            yield start, self.batch(start, start + size)


def random_images(shape: tuple[int, int, int], n: int, seed: int) -> Images:
    def get(a: int, b: int) -> np.ndarray:
        return np.stack(
            [
                np.random.default_rng([seed, i]).integers(0, 256, shape, np.uint8)
                for i in range(a, b)
            ]
        )

    return Images(shape, n, "random", get)


def open_images(shape: tuple[int, int, int], n: int, path: str | None, seed: int) -> Images:
    """Images for a build whose input is ``shape`` (C, H, W)."""
    if path is None:
        return random_images(shape, n, seed)
    c, h, w = shape
    if path.endswith(".npz") and Path(path).is_file():
        with np.load(path, allow_pickle=False) as z:
            if "images" in z.files:
                images = z["images"]
                if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != shape:
                    raise VerifyError(
                        f"images '{path}' must be uint8 [N, {c}, {h}, {w}], got "
                        f"{images.dtype} {list(images.shape)}"
                    )
                return Images(shape, min(n, len(images)), path, lambda a, b: images[a:b])
    from bireal_fpga.data import open_data

    if h != w:
        raise VerifyError(f"data '{path}': the build's input is {h}x{w}, not square")
    test = open_data(path, image_size=h, channels=c).test
    count = min(n, len(test))
    stored = getattr(test, "images", None)
    if stored is not None:
        return Images(shape, count, path, lambda a, b: stored[a:b].numpy())
    return Images(
        shape, count, path, lambda a, b: np.stack([test[i][0].numpy() for i in range(a, b)])
    )


# ---- stages ---------------------------------------------------------------------------------


class StageRun(Protocol):
    """A stage opened on a build folder."""

    trace: bool  # its batches return every layer (else only the output: head or top1)

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """The stage's outputs for a batch, by layer key."""
        ...

    def replay(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer the stage can show for one image (``[1, ...]`` arrays)."""
        ...


@dataclass(frozen=True)
class Stage:
    """One row of the verify table: a name, the artefacts it needs, how to open it."""

    name: str
    needs: tuple[str, ...]
    open: Callable[[Path, int | None], StageRun]
    summary: str = ""


class _Traced:
    """A stage that returns every layer for every image."""

    trace = True

    def __init__(self, fn: Callable[[np.ndarray, dict[str, np.ndarray]], np.ndarray]) -> None:
        self.fn = fn

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        got: dict[str, np.ndarray] = {}
        out = self.fn(images, got)
        if out.shape[1] == 1:  # a top-1 build's graph: the output is the best class index
            got[names.TOP1] = out[:, 0]
        return got

    def replay(self, image: np.ndarray) -> dict[str, np.ndarray]:
        return self.run(image)


def _open_pytorch(folder: Path, jobs: int | None) -> StageRun:
    from bireal_fpga.integer.forward import integer_layers
    from bireal_fpga.integer.params import IntegerNet

    stored = IntegerNet.load(folder / names.INTEGER)

    def fn(images: np.ndarray, got: dict[str, np.ndarray]) -> np.ndarray:
        layers = integer_layers(stored, images)
        del layers[names.TOP1]  # the stage shows the layers; its output is the scores
        got.update(layers)
        return layers[names.HEAD]

    return _Traced(fn)


def _open_golden(folder: Path, jobs: int | None) -> StageRun:
    from bireal_fpga.golden.model import GoldenModel

    golden = GoldenModel(folder / names.INTEGER)
    return _Traced(lambda images, got: golden.run(images, trace=got))


def _open_python(folder: Path, jobs: int | None) -> StageRun:
    from qonnx.core.modelwrapper import ModelWrapper

    from bireal_fpga.execution.finn_python import past_float32, run_finn_python

    graph = ModelWrapper(str(folder / names.HW))
    noted: set[str] = set()

    def fn(images: np.ndarray, got: dict[str, np.ndarray]) -> np.ndarray:
        out = run_finn_python(graph, images, trace=got)
        wide = [name for name in past_float32(got) if name not in noted]
        if wide:
            noted.update(wide)
            print(
                f"note: FINN's python execution carries float32 (integers exact to 2**24); "
                f"the values of {', '.join(wide)} pass 2**24, so the python stage may differ "
                "there by rounding; golden, cppsim and rtlsim compute in integers",
                file=sys.stderr,
            )
        return out

    return _Traced(fn)


class RtlsimRun:
    """The stitched design of a build folder in Verilator, run from a scratch folder."""

    trace = False

    def __init__(
        self,
        rtl_dir: Path,
        sim_dir: Path | None,
        jobs: int | None = None,
        progress: str | None = None,
    ) -> None:
        from bireal_fpga.rtl.stitch import load_design
        from bireal_fpga.rtlsim.stitched import StitchedSim

        if sim_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="bireal-sim-")
            sim_dir = Path(self._tmp.name)
        self.design = load_design(rtl_dir)
        self.sim = StitchedSim(self.design, sim_dir)
        self.jobs = jobs
        self.progress = progress
        self.timings: list[Any] = []
        self.load_cycles = 0

    def _run(self, images: np.ndarray, trace: dict[str, np.ndarray] | None) -> np.ndarray:
        with tempfile.TemporaryDirectory(prefix="bireal-rtlsim-") as tmp:
            outputs, timing, result = self.sim.run(
                images,
                trace=trace,
                jobs=self.jobs,
                rundir=Path(tmp) / "run",
                progress=self.progress,
            )
        self.timings.append(timing)
        self.load_cycles = max(self.load_cycles, result.load_cycles)
        return outputs

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        out = self._run(images, None)
        return {names.TOP1: out[:, 0]} if out.shape[1] == 1 else {names.HEAD: out}

    def replay(self, image: np.ndarray) -> dict[str, np.ndarray]:
        layers: dict[str, np.ndarray] = {}
        out = self._run(image, layers)
        if out.shape[1] == 1:
            layers[names.TOP1] = out[:, 0]
        else:
            layers.setdefault(names.HEAD, out)
        return layers

    def timing(self) -> Any:
        from bireal_fpga.rtlsim.stitched import merge_timings

        return merge_timings(self.timings)


NO_NODE = "none (each node's C++ equals FINN python: the HW graph itself differs)"


class CppsimRun(_Traced):
    """The folded graph of a build in C++ (finn-hlslib, g++), node by node; compiled (or
    taken from the cache) into ``work_dir``, else a temporary folder."""

    def __init__(
        self,
        folded: Path,
        work_dir: Path | None = None,
        jobs: int | None = None,
        reference: Path | None = None,
    ) -> None:
        from qonnx.core.modelwrapper import ModelWrapper

        from bireal_fpga.cppsim.graph import CppsimGraph

        self.reference = ModelWrapper(str(reference)) if reference else None
        if work_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="bireal-cppsim-")
            work_dir = Path(self._tmp.name)
        self.graph = CppsimGraph(ModelWrapper(str(folded)), work_dir, jobs=jobs)
        super().__init__(lambda images, got: self.graph.run(images, trace=got))

    def locate(self, image: np.ndarray) -> str | None:
        """The first node of the graph whose C++ differs from FINN python of the node or of
        the reference graph (the build's ``hw.onnx``) on ``image``."""
        return self.graph.first_differing_node(image[0], self.reference)


def _open_cppsim(folder: Path, jobs: int | None) -> StageRun:
    hw = folder / names.HW
    return CppsimRun(folder / names.FOLDED, None, jobs, hw if hw.is_file() else None)


def _open_source(folder: Path, jobs: int | None) -> StageRun:
    from bireal_fpga.importer.bireal import SourceMap
    from bireal_fpga.importer.source import SourceModel

    smap = SourceMap.from_dict(json.loads((folder / names.SOURCE_MAP).read_text()))
    model = SourceModel(folder / names.SOURCE, smap)

    def fn(images: np.ndarray, got: dict[str, np.ndarray]) -> np.ndarray:
        layers = model.trace(images)
        del layers[names.TOP1]
        got.update(layers)
        return layers[names.HEAD]

    return _Traced(fn)


def _open_rtlsim(folder: Path, jobs: int | None) -> StageRun:
    sim = folder / names.SIM
    # without sim/, compiled (or taken from the cache) in a temporary folder, not the build
    return RtlsimRun(folder / names.RTL, sim if sim.is_dir() else None, jobs)


STAGES: tuple[Stage, ...] = (
    Stage(
        "source",
        (names.SOURCE, names.SOURCE_MAP),
        _open_source,
        "the imported file (QONNX, FINN-streamlined) as given (ONNX reference evaluator, float64)",
    ),
    Stage("pytorch", (names.INTEGER,), _open_pytorch, "stored integer form, PyTorch"),
    Stage("golden", (names.INTEGER,), _open_golden, "numpy golden model"),
    Stage("python", (names.HW,), _open_python, "FINN python execution of hw.onnx"),
    Stage("rtlsim", (names.RTL,), _open_rtlsim, "stitched RTL in Verilator (sim/)"),
    Stage("cppsim", (names.FOLDED,), _open_cppsim, "finn-hlslib C++ (g++) of folded.onnx"),
)


# ---- the reference ----------------------------------------------------------------------------


class Reference:
    """The PyTorch integer form of a float model, derived afresh, and the model itself; for
    an imported build (no ``model.pt``, a ``source.onnx``), the integer form read afresh
    from the imported file, and that file as the float model."""

    def __init__(self, model_path: Path) -> None:
        from bireal_fpga.integer.derive import integer_form
        from bireal_fpga.train.checkpoint import load_checkpoint

        self.source: Any = None
        if not model_path.is_file() and (model_path.parent / names.SOURCE).is_file():
            from bireal_fpga.importer.bireal import read_qonnx
            from bireal_fpga.importer.source import SourceModel

            self.net, smap, _ = read_qonnx(model_path.parent / names.SOURCE)
            self.source = SourceModel(model_path.parent / names.SOURCE, smap)
            return
        self.model = load_checkpoint(model_path).build_model()
        self.net = integer_form(self.model)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(x) for x in self.net.input_shape)  # type: ignore[return-value]

    def trace(self, images: np.ndarray) -> dict[str, np.ndarray]:
        from bireal_fpga.integer.forward import integer_layers

        return integer_layers(self.net, images)

    def float_top1(self, images: np.ndarray) -> np.ndarray:
        """The float model's best class: the checkpoint in PyTorch evaluated in float64 (where
        it agrees with the integer form: :mod:`bireal_fpga.train.forms`), or the imported file
        in its own precision (float32)."""
        if self.source is not None:
            return self.source.float_top1(images)
        import torch

        from bireal_fpga.models.bireal import preprocess

        with torch.no_grad():
            x = preprocess(torch.from_numpy(images), torch.float64)
            return self.model(x).argmax(1).numpy()


def check_stage(
    run: StageRun,
    ref: Trace,
    images: np.ndarray,
    tally: Tally,
    offset: int,
    full_reference: Callable[[np.ndarray], Trace],
) -> None:
    """One batch of a stage into its tally. The first mismatch of an output-only stage is
    located by replaying that image with every layer recorded, against the full reference
    trace of that image (``full_reference``)."""
    got = run.run(images)
    had_first = tally.first_mismatch is not None
    bad = tally.add(ref, got, offset)
    if bad and not had_first and not run.trace:
        i = bad[0]
        one = images[i : i + 1]
        tally.first_mismatch = first_difference(full_reference(one), run.replay(one), 0, offset + i)
    locate = getattr(run, "locate", None)
    if bad and not had_first and locate is not None:
        node = locate(images[bad[0] : bad[0] + 1])
        tally.first_mismatch = f"{tally.first_mismatch}; first differing node: {node or NO_NODE}"


def stage_table(stages: Sequence[str], table: Sequence[Stage] = STAGES) -> list[Stage]:
    known = {s.name: s for s in table}
    out = []
    for name in stages:
        if name not in known:
            raise VerifyError(f"unknown stage '{name}' (known: {', '.join(known)})")
        out.append(known[name])
    if not out:
        raise VerifyError("no stage to verify (known: " + ", ".join(known) + ")")
    return out


def _check_folder(folder: Path, stages: Sequence[Stage]) -> None:
    if not (folder / names.REPORT).is_file():
        raise VerifyError(f"'{folder}' is not a build folder (no {names.REPORT})")
    if not (folder / names.MODEL).is_file() and not (folder / names.SOURCE).is_file():
        raise VerifyError(
            f"build '{folder}' has no {names.MODEL} (or imported {names.SOURCE}) to derive the "
            "reference from"
        )
    for stage in stages:
        for need in stage.needs:
            if not (folder / need).exists():
                raise VerifyError(f"build '{folder}' has no {need} for stage '{stage.name}'")


def verify(
    folder: str | Path,
    stages: Sequence[str] = ("pytorch", "golden", "python"),
    *,
    n: int = 100,
    images: str | None = None,
    seed: int = 0,
    jobs: int | None = None,
    progress: bool = False,
    table: Sequence[Stage] = STAGES,
) -> dict[str, Any]:
    """Compare ``stages`` of the build in ``folder`` with the PyTorch integer form on ``n``
    images (random with ``seed``, or from ``images``: a data path's test split or an ``.npz``
    with ``images``). ``{"stages": {name: {"n", "mismatches", "first_mismatch"}},
    "float_top1_agreement", "float_top1_disagreements", ...}``."""
    folder = Path(folder)
    chosen = stage_table(stages, table)
    if n < 1:
        raise VerifyError(f"--n must be >= 1, got {n}")
    _check_folder(folder, chosen)
    reference = Reference(folder / names.MODEL)
    source = open_images(reference.input_shape, n, images, seed)
    runs = {s.name: s.open(folder, jobs) for s in chosen}
    tallies = {s.name: Tally() for s in chosen}
    traced = [s.name for s in chosen if runs[s.name].trace]
    outputs_only = [s.name for s in chosen if not runs[s.name].trace]
    from bireal_fpga.rtlsim.stitched import default_jobs

    n_jobs = jobs or default_jobs(10**9)
    chunk = RTL_IMAGES_PER_JOB * n_jobs if outputs_only else TRACE_BATCH
    agree = 0
    bar = tqdm(total=source.n, desc="verify", unit="img", disable=not progress, leave=False)
    for start, block in source.batches(chunk):
        heads = []
        for sub_start in range(0, len(block), TRACE_BATCH):
            sub = block[sub_start : sub_start + TRACE_BATCH]
            ref = reference.trace(sub)
            for name in traced:
                check_stage(runs[name], ref, sub, tallies[name], start + sub_start, reference.trace)
            agree += int((reference.float_top1(sub) == ref[names.TOP1]).sum())
            heads.append({names.HEAD: ref[names.HEAD], names.TOP1: ref[names.TOP1]})
            if not outputs_only:
                bar.update(len(sub))
        if outputs_only:
            ref_out = {k: np.concatenate([h[k] for h in heads]) for k in heads[0]}
            for name in outputs_only:
                bar.set_postfix_str(name)
                check_stage(runs[name], ref_out, block, tallies[name], start, reference.trace)
            bar.update(len(block))
    bar.close()
    result: dict[str, Any] = {
        "images": source.source,
        "stages": {name: tallies[name].to_dict() for name in tallies},
        "float_top1_agreement": agree / source.n,
        "float_top1_disagreements": source.n - agree,
    }
    if "rtlsim" in runs:
        timing = runs["rtlsim"].timing()  # type: ignore[attr-defined]
        result["rtlsim_timing"] = timing.to_dict(frame_ends=False)
    return result


def simulate(
    folder: str | Path,
    *,
    n: int = 10,
    images: str | None = None,
    seed: int = 0,
    jobs: int | None = None,
) -> dict[str, Any]:
    """Outputs and measured cycles of the stitched RTL of the build in ``folder``."""
    folder = Path(folder)
    if not (folder / names.REPORT).is_file():
        raise VerifyError(f"'{folder}' is not a build folder (no {names.REPORT})")
    if not (folder / names.RTL / names.RTL_MANIFEST).is_file():
        raise VerifyError(f"build '{folder}' has no RTL (build it with --until rtl)")
    report = json.loads((folder / names.REPORT).read_text())
    run = _open_rtlsim(folder, jobs)
    assert isinstance(run, RtlsimRun)
    spec = report["spec"]
    shape = (int(spec["input_channels"]), int(spec["input_size"]), int(spec["input_size"]))
    source = open_images(shape, n, images, seed)
    outputs = run._run(source.batch(0, source.n), None)
    timing = run.timing()
    clock = float(report["board"]["clock_mhz"])
    return {
        "n": source.n,
        "outputs": outputs.tolist(),
        "timing": timing.to_dict(frame_ends=False),
        "clock_mhz": clock,
        "fps": timing.fps(clock),
    }
