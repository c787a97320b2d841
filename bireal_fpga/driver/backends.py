"""Opening a build's accelerator on a backend: the files checked, then the board (pynq) or
the simulation started, then the registers checked against the manifest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bireal_fpga.driver.errors import DriverError
from bireal_fpga.driver.files import WEIGHTS, check_bitstream, check_sim, locate

if TYPE_CHECKING:
    from bireal_fpga.driver.accelerator import Accelerator

BACKENDS = ("auto", "board", "sim")
# a batch's deadline by default: the board's in seconds; the simulation's in its own cycles
# (sim.SimPort: 8 intervals of the design per image), as a slow simulation is not a hang
TIMEOUT_S: dict[str, float | None] = {"board": 10.0, "sim": None}


def pick_backend() -> str:
    """``"board"`` when pynq is installed and finds a device, else ``"sim"``."""
    try:
        import pynq
    except ImportError:
        return "sim"
    try:
        return "board" if list(pynq.Device.devices) else "sim"
    except Exception:  # noqa: BLE001 (pynq without a device raises many kinds)
        return "sim"


def _shell_of(manifest: dict[str, Any]) -> dict[str, Any]:
    """The shell's description as a bitstream manifest records it."""
    s = manifest.get("streams") or {}
    return {
        "build_id": manifest.get("build_id"),
        "image": s.get("image"),
        "output": s.get("output"),
        "weights": s.get("weights"),
        "control": manifest.get("control"),
        "dma_length_bits": manifest.get("dma_length_bits"),
    }


def open_accelerator(
    cls: type[Accelerator],
    folder: Any,
    backend: str = "auto",
    *,
    batch_size: int | None = None,
    timeout_s: float | None = None,
    **options: Any,
) -> Accelerator:
    if backend not in BACKENDS:
        raise DriverError(f"backend '{backend}' is not one of {', '.join(BACKENDS)}")
    where = locate(folder)
    chosen = pick_backend() if backend == "auto" else backend
    timeout = TIMEOUT_S[chosen] if timeout_s is None else float(timeout_s)
    if timeout is not None and timeout <= 0:
        raise DriverError(f"timeout_s {timeout_s} is not positive")
    if chosen == "board":
        if options:
            raise DriverError(f"the board backend takes no options {sorted(options)}")
        if where.bitstream is None:
            raise DriverError(
                f"'{where.root}' holds no bitstream/ (a build without Vivado has none): "
                "use backend='sim', or build the bitstream"
            )
        manifest = check_bitstream(where.bitstream)
        from bireal_fpga.driver.board import PynqPort, open_overlay

        pynq, overlay, mhz = open_overlay(where.bitstream, manifest)
        port: Any = PynqPort(pynq, overlay, manifest, mhz)
        shell = _shell_of(manifest)
        wfile = manifest["files"].get("weights")
        weights = (where.bitstream / wfile).read_bytes() if wfile else None
        info = {"board": manifest.get("board"), "folder": str(where.root)}
    else:
        if where.sim is None:
            raise DriverError(
                f"'{where.root}' holds no shell_sim/: the simulation backend needs a build "
                "through shell-sim (or a deploy folder)"
            )
        sim_manifest, shell = check_sim(where.sim)
        if where.bitstream is not None:
            bit = check_bitstream(where.bitstream)
            if bit.get("build_id") != shell["build_id"]:
                raise DriverError(
                    f"'{where.bitstream}' is of build {bit.get('build_id')}, '{where.sim}' of "
                    f"{shell['build_id']}: a manifest of another build"
                )
        from bireal_fpga.driver.sim import SimPort, SimProcess

        unknown = set(options) - {"stall", "seed"}
        if unknown:
            raise DriverError(f"the sim backend takes stall and seed, not {sorted(unknown)}")
        stall = options.get("stall", 0.0)
        pair = (float(stall), float(stall)) if isinstance(stall, int | float) else tuple(stall)
        process = SimProcess(where.sim, stall=pair, seed=int(options.get("seed", 1)))  # type: ignore[arg-type]
        port = SimPort(process, sim_manifest, shell)
        weights = (where.sim / WEIGHTS).read_bytes() if shell.get("weights") else None
        info = {"board": sim_manifest.get("board"), "folder": str(where.root)}
    try:
        return cls(
            port, shell, batch_size=batch_size, timeout_s=timeout, weights=weights, info=info
        )
    except BaseException:
        port.close()
        raise
