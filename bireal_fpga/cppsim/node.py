"""One node of the cppsim graph (:mod:`.specialize`) in C++ simulation.

An HLS node's C++ is finn-plus's: it generates the node's source (its own
``code_generation_cppsim``: the finn-hlslib call, its parameters, and npy I/O through cnpy),
:mod:`.compile` compiles it with the project's g++
command instead of finn-plus's ``compile_singlenode_code`` (which needs Vitis), and FINN's own
``execute_node`` in ``exec_mode="cppsim"`` writes the input npy files, runs the executable and
reads its outputs back, exactly as in FINN's flow.

A node with the project's own driver (:mod:`.drivers`: the layers finn-plus 1.6.1 has only as
RTL, and those whose finn-plus code needs a newer finn-hlslib) is generated there, compiled the
same way, and run by :func:`run_node` with FINN's npy convention (``input_<i>.npy`` in the
node's folded input shape, ``output_<o>.npy`` in its folded output shape).

The generated source names its npy files by absolute path (``"<code_gen_dir>/input_0.npy"``);
that prefix is removed, so that the executable (cached by content) serves the node in any
folder, and the node's ``executable_path`` is a two-line launcher in its folder that runs the
cached executable there.
"""

from __future__ import annotations

import shlex
import shutil
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from bireal_fpga.cppsim.compile import Toolchain, compile_many, toolchain
from bireal_fpga.errors import BiRealError
from bireal_fpga.hwlayers.finn_env import finn_ready

HLS_SUFFIX = "_hls"

LAUNCHER = "node_model"
"""The node's ``executable_path``: runs the cached executable in the node's folder."""


class CppsimError(BiRealError):
    """A node cannot be simulated in C++ (not an HLS node, or its source is unusable)."""


@dataclass(frozen=True)
class CppsimNode:
    """A node ready for ``exec_mode="cppsim"``."""

    name: str
    op_type: str
    src_dir: Path  # finn-plus's generated source (``code_gen_dir_cppsim``)
    exe: Path  # the compiled executable (in the cache)


def is_hls(node: Any) -> bool:
    return str(node.op_type).endswith(HLS_SUFFIX)


def generate_node(model: ModelWrapper, node: Any, work_dir: Path) -> Path:
    """The cppsim source of ``node`` in ``work_dir/<node name>`` (made afresh): the project's
    driver where it has one, else finn-plus's, with the npy paths made relative to that
    folder; the folder."""
    from bireal_fpga.cppsim import drivers

    if drivers.is_own(node):
        return drivers.generate_own(model, node, work_dir)
    if not is_hls(node):
        raise CppsimError(f"{node.name} ({node.op_type}) is not an HLS node: no cppsim code")
    finn_ready()
    from qonnx.custom_op.registry import getCustomOp

    d = (work_dir / node.name).resolve()
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    inst = getCustomOp(node)
    inst.set_nodeattr("code_gen_dir_cppsim", str(d))
    inst.code_generation_cppsim(model)
    _relocate(d)
    return d


def _relocate(d: Path) -> None:
    prefix = f'"{d}/'
    for cpp in d.glob("*.cpp"):
        text = cpp.read_text().replace(prefix, '"')
        if str(d) in text:
            raise CppsimError(f"{cpp} names its folder other than as an npy path prefix")
        cpp.write_text(text)


def _write_launcher(d: Path, exe: Path) -> Path:
    launcher = d / LAUNCHER
    launcher.write_text(f'#!/bin/sh\ncd "$(dirname "$0")" && exec {shlex.quote(str(exe))}\n')
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return launcher


def prepare_nodes(
    model: ModelWrapper,
    nodes: Sequence[Any],
    work_dir: Path,
    *,
    jobs: int | None = None,
    tc: Toolchain | None = None,
    generated: Sequence[Path] | None = None,
) -> list[CppsimNode]:
    """Generate, compile (``jobs`` at a time, cached) and attach the cppsim executable of each
    of ``nodes`` (HLS nodes of ``model``): afterwards each has ``exec_mode="cppsim"`` and its
    ``executable_path`` set, and :func:`run_node` executes it. ``generated``: the nodes'
    source folders, already made by :func:`generate_node` (not generated again)."""
    from qonnx.custom_op.registry import getCustomOp

    from bireal_fpga.cppsim import drivers

    tc = tc or toolchain()
    dirs = list(generated or [generate_node(model, node, work_dir) for node in nodes])
    exes = compile_many(dirs, jobs=jobs, tc=tc)
    prepared = []
    for node, d, exe in zip(nodes, dirs, exes, strict=True):
        launcher = _write_launcher(d, exe)
        if is_hls(node) and not drivers.is_own(node):
            inst = getCustomOp(node)
            inst.set_nodeattr("executable_path", str(launcher))
            inst.set_nodeattr("exec_mode", "cppsim")
        prepared.append(CppsimNode(node.name, node.op_type, d, exe))
    return prepared


def run_node(
    model: ModelWrapper, node: Any, inputs: dict[str, np.ndarray], src_dir: Path | None = None
) -> dict[str, np.ndarray]:
    """The cppsim execution of a prepared ``node`` on ``inputs`` (its dynamic input tensors,
    by name; initializers come from ``model``): its outputs, by name. An HLS node of
    finn-plus's runs through FINN's own ``execute_node``; a node with the project's driver
    through :func:`run_own` in ``src_dir`` (its folder from :func:`prepare_nodes`)."""
    from qonnx.custom_op.registry import getCustomOp

    from bireal_fpga.cppsim import drivers

    if drivers.is_own(node):
        if src_dir is None or not (src_dir / LAUNCHER).is_file():
            raise CppsimError(f"{node.name} is not prepared for cppsim (prepare_nodes first)")
        return run_own(model, node, inputs, src_dir)
    inst = getCustomOp(node)
    if inst.get_nodeattr("exec_mode") != "cppsim" or not inst.get_nodeattr("executable_path"):
        raise CppsimError(f"{node.name} is not prepared for cppsim (prepare_nodes first)")
    context: dict[str, np.ndarray] = {}
    for t in node.input:
        init = model.get_initializer(t)
        if init is not None:
            context[t] = np.asarray(init, dtype=np.float32)
    for t, v in inputs.items():
        context[t] = np.asarray(v, dtype=np.float32)
    inst.execute_node(context, model.graph)
    return {t: np.asarray(context[t]) for t in node.output}


def run_own(
    model: ModelWrapper, node: Any, inputs: dict[str, np.ndarray], src_dir: Path
) -> dict[str, np.ndarray]:
    """A node with the project's driver, by FINN's npy convention: each dynamic input folded
    (``get_folded_input_shape``) into ``input_<i>.npy``, the executable run in ``src_dir``,
    ``output_<o>.npy`` read back in the node's normal output shape."""
    import subprocess

    from qonnx.custom_op.registry import getCustomOp

    inst = getCustomOp(node)
    for i, t in enumerate(node.input):
        if t in inputs:
            v = np.asarray(inputs[t], dtype=np.float32)
        elif model.get_initializer(t) is not None:
            continue
        else:
            raise CppsimError(f"{node.name}: no value for its input {t}")
        np.save(src_dir / f"input_{i}.npy", v.reshape(inst.get_folded_input_shape(i)))
    for o in range(len(node.output)):
        (src_dir / f"output_{o}.npy").unlink(missing_ok=True)
    proc = subprocess.run([str(src_dir / LAUNCHER)], capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        raise CppsimError(
            f"{node.name}: cppsim executable exited {proc.returncode}: {tail[0]} ({src_dir})"
        )
    out = {}
    for o, t in enumerate(node.output):
        f = src_dir / f"output_{o}.npy"
        if not f.is_file():
            raise CppsimError(f"{node.name}: cppsim wrote no output_{o}.npy ({src_dir})")
        out[t] = np.load(f).reshape(inst.get_normal_output_shape(o)).astype(np.float32)
    return out
