"""The stitched accelerator in Verilator: images in, scores (or top-1) out, cycles measured.

``StitchedSim.run`` streams uint8 images (NCHW) into ``in0_V`` back to back at full rate and
returns the integer outputs with the cycle each frame completed. From those: the latency of
the first frame, and the steady-state initiation interval (cycles between frames once the
pipeline is full), hence the FPS at the board clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bireal_fpga.errors import BiRealError
from bireal_fpga.rtl.layers.base import WEIGHT_BUS_BITS, WEIGHT_PORT
from bireal_fpga.rtl.stitch import Design
from bireal_fpga.rtl.streams import pack, unpack
from bireal_fpga.rtlsim.verilator_sim import SimPort, SimResult, Tap, VerilatorSim


@dataclass(frozen=True)
class Timing:
    frames: int
    cycles: int  # all frames
    latency: int  # cycles until the first frame's last output word
    interval: float | None  # steady-state cycles per frame (None for one frame)
    frame_end: tuple[int, ...]

    def fps(self, clock_mhz: float) -> float | None:
        if not self.interval:
            return None
        return clock_mhz * 1e6 / self.interval

    def to_dict(self) -> dict[str, object]:
        return {
            "frames": self.frames,
            "cycles": self.cycles,
            "latency_cycles": self.latency,
            "interval_cycles": self.interval,
            "frame_end_cycles": list(self.frame_end),
        }


def timing_of(frame_end: list[int], cycles: int) -> Timing:
    n = len(frame_end)
    interval: float | None = None
    if n >= 2:
        # the first frames fill the pipeline and its FIFOs; the steady state is measured over
        # the second half of the run
        first = min(n // 2, n - 2)
        interval = (frame_end[-1] - frame_end[first]) / (n - 1 - first)
    return Timing(n, cycles, frame_end[0] if n else 0, interval, tuple(frame_end))


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
    ) -> tuple[np.ndarray, Timing, SimResult]:
        """Outputs ``[N, elements]`` (int64) for uint8 ``images`` ``[N, C, H, W]``.

        ``paced``: offer the input no faster than one frame per estimated interval (FIFO
        sizing), instead of as fast as the accelerator takes it. ``trace`` gets the layer
        outputs (``stem``, ``blocks.<i>``, NCHW int64) recorded inside the design."""
        d = self.design
        nhwc = np.ascontiguousarray(np.asarray(images).transpose(0, 2, 3, 1)).astype(np.int64)
        words = pack(nhwc, d.input.fmt)
        if len(words) != d.input.words * len(images):
            raise ValueError(
                f"{len(images)} images make {len(words)} input words, the accelerator takes "
                f"{d.input.words} per image"
            )
        expect = d.output.words * len(images)
        max_idle = 4 * d.cycles + 20_000
        streams = {"in0_V": words}
        if d.weight_layers:  # the run-time weights are loaded first, once per run
            if self._weights is None:
                self._weights = d.weight_words()
            streams[WEIGHT_PORT] = self._weights
        result = self.sim.run(
            streams,
            stall_in=stall,
            stall_out=stall,
            max_idle=max_idle,
            rundir=rundir,
            expect={"out0_V": expect},
            in_period=d.cycles / d.input.words if paced else 0.0,
            record_taps=trace is not None,
        )
        if trace is not None:
            for t in d.taps:
                vals = unpack(result.taps[t.tensor.replace(".", "_")], t.fmt)
                shape = (len(images), *t.folded_shape[1:-2], -1)  # [N, H, W, C]
                arr = vals.reshape(shape)
                trace["head" if t.tensor == "scores" else t.tensor] = (
                    arr.transpose(0, 3, 1, 2) if arr.ndim == 4 else arr.reshape(len(images), -1)
                )
        raw = unpack(result.outputs["out0_V"], d.output.fmt)
        out = raw.reshape(len(images), -1)
        cyc = result.out_cycles["out0_V"]
        ends = [cyc[(i + 1) * d.output.words - 1] for i in range(len(images))]
        return out, timing_of(ends, result.cycles), result


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
