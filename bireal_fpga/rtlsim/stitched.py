"""The stitched accelerator in Verilator: images in, scores (or top-1) out, cycles measured.

``StitchedSim.run`` streams uint8 images (NCHW) into ``in0_V`` back to back at full rate and
returns the integer outputs with the cycle each frame completed. From those: the latency of
the first frame, and the steady-state initiation interval (cycles between frames once the
pipeline is full), hence the FPS at the board clock. Many images are split into consecutive
parts simulated at once, one Verilator process per core, each from reset: the outputs are the
same (a frame's result does not depend on its neighbours), and the steady-state interval is
measured over every part's second half.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bireal_fpga import names
from bireal_fpga.arch.streams import pack, unpack
from bireal_fpga.errors import BiRealError
from bireal_fpga.rtl.layers.base import WEIGHT_BUS_BITS, WEIGHT_PORT
from bireal_fpga.rtl.stitch import Design
from bireal_fpga.rtlsim.verilator_sim import SimPort, SimResult, Tap, VerilatorSim

# A part of a parallel run gets at least this many images: the interval is measured over a
# run's second half, and a deep pipeline settles slowly (Bi-Real-18-CIFAR: 16 frames still run
# 3 % slow, 32 reach the estimate), so short parts would report a transient.
MIN_FRAMES_PER_RUN = 32


def default_jobs(images: int) -> int:
    """Simulator processes for ``images`` images: one per usable core, each with at least
    ``MIN_FRAMES_PER_RUN`` images."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, images // MIN_FRAMES_PER_RUN))


@dataclass(frozen=True)
class Timing:
    """Cycle counts of a simulation: ``runs`` independent runs of the stitched design (the
    images split into consecutive parts, run at once in parallel processes), each from reset.
    ``frame_end``: each frame's last output word's cycle in its own run."""

    frames: int
    cycles: int  # simulated cycles, all runs together
    latency: int  # cycles until the first frame's last output word
    interval: float | None  # steady-state cycles per frame (None for one frame)
    frame_end: tuple[int, ...]
    runs: int = 1
    steady_cycles: float = 0.0  # the steady states of all runs: cycles ...
    steady_frames: int = 0  # ... and frames (interval = their ratio)

    def fps(self, clock_mhz: float) -> float | None:
        if not self.interval:
            return None
        return clock_mhz * 1e6 / self.interval

    def to_dict(self, *, frame_ends: bool = True) -> dict[str, object]:
        out: dict[str, object] = {
            "frames": self.frames,
            "cycles": self.cycles,
            "latency_cycles": self.latency,
            "interval_cycles": self.interval,
            "runs": self.runs,
        }
        if frame_ends:
            out["frame_end_cycles"] = list(self.frame_end)
        return out


def _steady(frame_end: Sequence[int]) -> tuple[float, int] | None:
    """(cycles, frames) of a run's steady state: its second half (the first frames fill the
    pipeline and its FIFOs)."""
    n = len(frame_end)
    if n < 2:
        return None
    first = min(n // 2, n - 2)
    return float(frame_end[-1] - frame_end[first]), n - 1 - first


def timing_of_runs(frame_ends: Sequence[Sequence[int]], cycles: Sequence[int]) -> Timing:
    """The timing of independent runs: the latency of the first, the steady-state interval
    over all their steady states."""
    steady = [st for st in map(_steady, frame_ends) if st is not None]
    s_cycles, s_frames = sum(c for c, _ in steady), sum(f for _, f in steady)
    interval = s_cycles / s_frames if steady else None
    ends = tuple(e for run in frame_ends for e in run)
    first = frame_ends[0][0] if frame_ends and frame_ends[0] else 0
    return Timing(
        len(ends), sum(cycles), first, interval, ends, len(frame_ends), s_cycles, s_frames
    )


def merge_timings(timings: Sequence[Timing]) -> Timing:
    """The timing of separate simulations of one design (batches of a long verification):
    the latency of the first, the interval over all their steady states."""
    if not timings:
        raise ValueError("no simulation ran")
    s_cycles = sum(t.steady_cycles for t in timings)
    s_frames = sum(t.steady_frames for t in timings)
    return Timing(
        sum(t.frames for t in timings),
        sum(t.cycles for t in timings),
        timings[0].latency,
        s_cycles / s_frames if s_frames else None,
        tuple(e for t in timings for e in t.frame_end),
        sum(t.runs for t in timings),
        s_cycles,
        s_frames,
    )


class StitchedSim:
    def __init__(
        self, design: Design, workdir: Path, *, opt: str = "-O2", threads: int = 1
    ) -> None:
        self.design = design
        self._weights: list[int] | None = None
        self.sim = VerilatorSim(
            design.top,
            design.sources,
            [SimPort("in0_V", design.input.fmt.axi_width)]
            + (
                [SimPort(WEIGHT_PORT, WEIGHT_BUS_BITS, preload=True)]
                if design.weight_layers
                else []
            ),
            [SimPort("out0_V", design.output.fmt.axi_width)],
            workdir,
            monitors=list(design.fifos),
            taps=[
                Tap(
                    t.tensor.replace(".", "_"),
                    f"{design.top}__DOT__{t.port}_tvalid",
                    f"{design.top}__DOT__{t.port}_tready",
                    f"{design.top}__DOT__{t.port}_tdata",
                    t.fmt.width,
                )
                for t in design.taps
            ],
            data_files=design.data_files,
            opt=opt,
            threads=threads,
        )

    def build(self) -> Path:
        return self.sim.build()

    def run(
        self,
        images: np.ndarray,
        *,
        stall: float = 0.0,
        rundir: Path | None = None,
        paced: bool = False,
        trace: dict[str, np.ndarray] | None = None,
        jobs: int | None = None,
        progress: str | None = None,
    ) -> tuple[np.ndarray, Timing, SimResult]:
        """Outputs ``[N, elements]`` (int64) for uint8 ``images`` ``[N, C, H, W]``.

        ``paced``: offer the input no faster than one frame per estimated interval (FIFO
        sizing), instead of as fast as the accelerator takes it. ``trace`` gets the layer
        outputs (``stem``, ``blocks.<i>``, NCHW int64) recorded inside the design.
        ``jobs``: split the images into that many consecutive parts, each run from reset in its
        own simulator process at the same time (default: :func:`default_jobs`; a paced run is
        one). Each run loads the run-time weights first. The :class:`SimResult` is merged:
        cycles summed, FIFO occupancies the highest of any run (recorded in paced runs
        only). ``progress``: a label for a progress bar of the frames out."""
        d = self.design
        images = np.asarray(images)
        n_jobs = 1 if paced else max(1, min(jobs or default_jobs(len(images)), len(images)))
        parts = [p for p in np.array_split(np.arange(len(images)), n_jobs) if len(p)]
        streams: list[dict[str, list[int]]] = []
        for part in parts:
            nhwc = np.ascontiguousarray(images[part].transpose(0, 2, 3, 1)).astype(np.int64)
            words = pack(nhwc, d.input.fmt)
            if len(words) != d.input.words * len(part):
                raise ValueError(
                    f"{len(part)} images make {len(words)} input words, the accelerator takes "
                    f"{d.input.words} per image"
                )
            run_streams = {"in0_V": words}
            if d.weight_layers:  # the run-time weights are loaded first, once per run
                if self._weights is None:
                    self._weights = d.weight_words()
                run_streams[WEIGHT_PORT] = self._weights
            streams.append(run_streams)
        base = Path(rundir or self.sim.workdir / "run")
        results = self.sim.run_many(
            streams,
            rundirs=[base] if len(parts) == 1 else [base / f"part{k}" for k in range(len(parts))],
            expects=[{"out0_V": d.output.words * len(part)} for part in parts],
            stall_in=stall,
            stall_out=stall,
            max_idle=4 * d.cycles + 20_000,
            in_period=d.cycles / d.input.words if paced else 0.0,
            record_taps=trace is not None,
            record_occupancy=paced,
            progress=(progress, d.output.words) if progress else None,
        )
        outs, ends = [], []
        traces: list[dict[str, np.ndarray]] = []
        for part, result in zip(parts, results, strict=True):
            raw = unpack(result.outputs["out0_V"], d.output.fmt)
            outs.append(raw.reshape(len(part), -1))
            cyc = result.out_cycles["out0_V"]
            ends.append([cyc[(i + 1) * d.output.words - 1] for i in range(len(part))])
            if trace is not None:
                traces.append(self._trace(result, len(part)))
        if trace is not None:
            for key in traces[0]:
                trace[key] = np.concatenate([t[key] for t in traces])
        merged = SimResult(
            sum(r.cycles for r in results),
            {k: [w for r in results for w in r.outputs[k]] for k in results[0].outputs},
            {k: [c for r in results for c in r.out_cycles[k]] for k in results[0].out_cycles},
            {k: max(r.max_occupancy[k] for r in results) for k in results[0].max_occupancy},
            {k: [w for r in results for w in r.taps[k]] for k in results[0].taps},
            max(r.load_cycles for r in results),
        )
        return np.concatenate(outs), timing_of_runs(ends, [r.cycles for r in results]), merged

    def _trace(self, result: SimResult, n: int) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for t in self.design.taps:
            vals = unpack(result.taps[t.tensor.replace(".", "_")], t.fmt)
            arr = vals.reshape((n, *t.folded_shape[1:-2], -1))  # [N, H, W, C]
            out[names.trace_key(t.tensor)] = (
                arr.transpose(0, 3, 1, 2) if arr.ndim == 4 else arr.reshape(n, -1)
            )
        return out


class OutputMismatch(BiRealError):
    """The stitched design's outputs differ from the PyTorch integer form."""


def expected_outputs(ref_scores: np.ndarray, width: int) -> np.ndarray:
    """The accelerator's expected outputs: the scores, or (a top-1 build) their argmax."""
    if width == 1 and ref_scores.shape[1] > 1:
        return ref_scores.argmax(1)[:, None].astype(np.int64)  # ties -> lowest index
    return ref_scores.astype(np.int64)


def mismatched_images(outputs: np.ndarray, ref_scores: np.ndarray) -> list[int]:
    want = expected_outputs(ref_scores, outputs.shape[1])
    return [i for i in range(len(want)) if not np.array_equal(outputs[i], want[i])]


def compare_outputs(outputs: np.ndarray, ref_scores: np.ndarray, what: str) -> None:
    want = expected_outputs(ref_scores, outputs.shape[1])
    if outputs.shape != want.shape:
        raise OutputMismatch(f"{what}: output shape {outputs.shape} != expected {want.shape}")
    bad = mismatched_images(outputs, ref_scores)
    if bad:
        i = bad[0]
        j = int(np.flatnonzero(outputs[i] != want[i])[0])
        raise OutputMismatch(
            f"{what} differs from the PyTorch integer form on {len(bad)} of {len(want)} images; "
            f"first: image {i}, output {j} (RTL {outputs[i, j]}, PyTorch {want[i, j]})"
        )
