"""The build configuration: one frozen, documented dataclass that round-trips to JSON and YAML.

A build is ``bireal_fpga.build(BuildConfig(...))`` (or ``bireal-fpga build --config file``);
the configuration it ran with is written into the build folder as ``build_config.json``, so
``bireal-fpga build --config build/x/build_config.json`` repeats it (and, since every step
records what it read, reuses everything that is still valid).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from bireal_fpga.errors import BiRealError

COST_MODELS = ("rtl", "finn")


class ConfigError(BiRealError):
    """A build configuration that cannot be used (unknown field, bad value, unreadable file)."""


@dataclass(frozen=True)
class BuildConfig:
    """What to build, for which board, into which folder.

    Attributes:
        source: what to build: a checkpoint (``.pt``, from ``bireal-fpga train``), a spec (a
            preset name, a ``.json``/``.yaml`` spec file or inline JSON; built with random
            weights and calibrated batch norms, seeded by ``seed``), or a ``qonnx.onnx`` that
            an earlier build wrote (starts at the HW layers; there is no integer form to
            verify RTL against, so such a build ends at ``folding``).
        board: board preset (``bireal-fpga`` knows ZCU104, KV260, Ultra96-V2, PYNQ-Z1,
            PYNQ-Z2; case-insensitive).
        out_dir: the build folder. The build owns it: it holds one artefact per step and the
            records that let a rerun reuse every step whose inputs did not change.
        target_fps: ``"max"`` (the fastest folding that fits the board) or frames per second;
            None: the board preset's ``target_fps``.
        folding_config: a FINN folding-config JSON (as the build writes it) that replaces the
            automatic folding.
        cost_model: what folding prices a design with: ``"rtl"`` (this project's RTL,
            calibrated on Yosys; the default) or ``"finn"`` (FINN's HLS cost models).
        top1: the accelerator outputs the best class index (LabelSelect) instead of scores.
        n_check: random images of the golden-model check, of the FIFO sizing's full-rate check
            and of the stitched RTL simulation.
        seed: seed of an untrained model's weights and of the check images.
        cppsim: run the ``cppsim`` check: every node of the folded graph in finn-hlslib C++
            (g++, no Vitis) on ``n_check`` random images == the PyTorch integer form (needs
            finn-hlslib: ``FINN_HLSLIB``); off, the step records that it did not run.
        synth: run Yosys for resource estimates (the ``synth`` step); off, the step records
            that no estimate was made.
        fit_iterations: with ``target_fps = "max"``, how many times the design is folded
            again when Yosys finds that it does not fit (each time under the measured
            overshoot of the cost model); 0 = never.
        jobs: parallel Yosys / simulator processes (changes no result).
        from_step: rerun from this step even where its inputs are unchanged (the steps
            before it must be complete).
        to_step: stop after this step (default: the last step the source allows).
        bitstream_dir: where a good bitstream is published, as ``<bitstream_dir>/<BOARD>/``
            (``<base>.bit``, ``<base>.hwh``, ``manifest.json``); None: only in the build
            folder's ``bitstream/``.
        vivado_timeout_s: the longest Vivado may run (synthesis to bitstream) before the
            build stops with its log.
    """

    source: str
    board: str
    out_dir: str
    target_fps: str | None = None
    folding_config: str | None = None
    cost_model: str = "rtl"
    top1: bool = False
    n_check: int = 32
    seed: int = 0
    cppsim: bool = False
    synth: bool = True
    fit_iterations: int = 3
    jobs: int = 2
    from_step: str | None = None
    to_step: str | None = None
    bitstream_dir: str | None = "bitstreams"
    vivado_timeout_s: int = 12 * 3600

    def __post_init__(self) -> None:
        def bad(name: str, value: object, want: str) -> ConfigError:
            return ConfigError(f"build config: {name} = {value!r} is invalid: {want}")

        for name in ("source", "board", "out_dir"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise bad(name, value, "a non-empty string is required")
        fps = self.target_fps
        if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (str, int, float))):
            raise bad("target_fps", fps, "'max' or a positive number")
        if fps is not None and fps != "max":
            try:
                value = float(fps)
            except ValueError:
                value = -1.0
            if not value > 0 or value == float("inf"):
                raise bad("target_fps", fps, "'max' or a positive number")
            object.__setattr__(self, "target_fps", f"{value:g}")
        if self.cost_model not in COST_MODELS:
            raise bad("cost_model", self.cost_model, f"one of {', '.join(COST_MODELS)}")
        numbers = (("n_check", 1), ("seed", 0), ("fit_iterations", 0), ("jobs", 1))
        for name, lo in (*numbers, ("vivado_timeout_s", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise bad(name, value, f"an integer >= {lo}")
        for name in ("top1", "cppsim", "synth"):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, getattr(self, name), "true or false")
        for name in ("folding_config", "from_step", "to_step", "bitstream_dir"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise bad(name, value, "a non-empty string or null")

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "build config") -> BuildConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"{where}: unknown field '{unknown[0]}' (fields: {', '.join(sorted(known))})"
            )
        missing = [n for n in ("source", "board", "out_dir") if n not in data]
        if missing:
            raise ConfigError(f"{where}: the field '{missing[0]}' is required")
        return cls(**dict(data))

    def save(self, path: str | Path) -> None:
        """Write as JSON (``.json``) or YAML (``.yaml``/``.yml``)."""
        path = Path(path)
        if path.suffix in (".yaml", ".yml"):
            text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        elif path.suffix == ".json":
            text = json.dumps(self.to_dict(), indent=2) + "\n"
        else:
            raise ConfigError(f"'{path}': build config files end in .json, .yaml or .yml")
        tmp = path.with_name(path.name + ".partial")
        tmp.write_text(text)
        tmp.replace(path)

    def replace(self, **changes: Any) -> BuildConfig:
        return dataclasses.replace(self, **changes)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The fields of a JSON or YAML build-config file (not yet validated)."""
    path = Path(path)
    if path.suffix not in (".json", ".yaml", ".yml"):
        raise ConfigError(f"build config '{path}' must end in .json, .yaml or .yml")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"build config '{path}' cannot be read ({exc.strerror})") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"build config '{path}' is not valid: {first}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"build config '{path}' must hold a mapping of fields")
    return data


def load_config(path: str | Path, **overrides: Any) -> BuildConfig:
    """The config in ``path``, with ``overrides`` (e.g. command-line flags) replacing fields."""
    data = {**read_config_file(path), **overrides}
    return BuildConfig.from_dict(data, where=f"build config '{path}'")
