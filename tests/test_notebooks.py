"""The notebooks (``notebooks/``), executed end to end by nbclient as someone runs them in a
deploy folder (``DIR/notebooks/``, opening ``..``), in a kernel of this interpreter:

- ``inference.ipynb`` on the simulation (the backend ``pick_backend`` chooses without pynq):
  no errors, the accuracy line with the count the integer form predicts, the throughput and
  latency lines, the figures (the grid of images, the accuracy per class);
- the same notebook on the board path (``BIREAL_BACKEND=board``, the pynq stand-in), its
  cells without figures and with matplotlib, torch, FINN... unimportable: numpy alone;
- ``inspect.ipynb`` on the deploy folder's report (synthesis off: no Yosys numbers), on one
  with Yosys' numbers, and on a report of a build stopped after folding;
- the stored notebooks: valid nbformat 4, no outputs and no execution counts, the first code
  cell names ``FOLDER`` (and ``BACKEND``), figures only in cells tagged ``figure``, imports of
  numpy, matplotlib, json, pathlib, os and ``bireal_fpga.driver`` alone.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
from conftest import ENV, STANDINS
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

from bireal_fpga import names
from bireal_fpga.integer.forward import integer_layers
from bireal_fpga.integer.params import IntegerNet

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
INFERENCE, INSPECT = "inference.ipynb", "inspect.ipynb"
SAMPLES = "samples/cifar10_test.npz"
CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
N_SAMPLES = 64
RESOURCES = ("LUT", "FF", "BRAM36", "URAM", "DSP")
KERNEL = "bireal-test"
INLINE = "module://matplotlib_inline.backend_inline"  # ipykernel's default: figures as PNG
CELL_TIMEOUT_S = 120
ALLOWED_IMPORTS = {"numpy", "matplotlib", "json", "pathlib", "os"}
BLOCKED = ("matplotlib", "torch", "finn", "qonnx", "brevitas", "onnx", "onnxruntime", "scipy")
ACCURACY = re.compile(r"^accuracy: (\d+)/(\d+) = ([\d.]+) %$", re.MULTILINE)
PROBE = "import json, sys\nprint(json.dumps({'executable': sys.executable, 'path': sys.path}))"


def reference_top1(build: Path, images: np.ndarray) -> np.ndarray:
    """The best class of each NHWC image by the build's integer form (PyTorch's, bit-exact)."""
    net = IntegerNet.load(build / names.INTEGER)
    scores = integer_layers(net, images.transpose(0, 3, 1, 2))[names.HEAD]
    return np.argmax(scores, axis=1)


@pytest.fixture(scope="module")
def deploy_folder(tiny_deploy: Path) -> Path:
    """The deployment of the tiny build (``bireal-fpga deploy``: bitstream/, shell_sim/,
    report.json, samples/: CIFAR-10 test images where ``../shared/data`` has them, else random
    ones without labels; notebooks/ copied from the repository)."""
    return tiny_deploy


@pytest.fixture(scope="module")
def kernels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kernelspec folder whose one kernel is ipykernel on this interpreter (the venv's), so
    that no other ``python3`` kernelspec (a user's) is picked."""
    root = tmp_path_factory.mktemp("kernels")
    spec = root / KERNEL
    spec.mkdir()
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "bireal-fpga tests", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    return root


def kernel_env(**extra: str | None) -> dict[str, str]:
    """The tests' environment for the kernel, without any BIREAL_ or PYNQ_ setting of the
    caller's, figures inline (PNG), and ``extra`` (None: removed)."""
    env = {k: v for k, v in ENV.items() if not k.startswith(("BIREAL_", "PYNQ_"))}
    env["MPLBACKEND"] = INLINE
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def execute(
    path: Path,
    kernels: Path,
    env: dict[str, str],
    *,
    figures: bool = True,
    prelude: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Run the notebook ``path`` in its folder (``figures=False``: without the cells tagged
    ``figure``; ``prelude``: a cell first); returns it with its outputs and what the kernel
    says of itself (its ``sys.executable`` and ``sys.path``, from a last cell)."""
    nb = nbformat.read(path, as_version=4)
    if not figures:
        nb.cells = [c for c in nb.cells if "figure" not in c.metadata.get("tags", [])]
    if prelude:
        nb.cells.insert(0, new_code_cell(prelude))
    nb.cells.append(new_code_cell(PROBE))
    km = AsyncKernelManager(
        kernel_name=KERNEL, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)])
    )
    client = NotebookClient(
        nb,
        km=km,
        timeout=CELL_TIMEOUT_S,
        shutdown_kernel="immediate",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute(env=env, cleanup_kc=True)  # cleanup: shut the kernel down (ours, not nbclient's)
    probe = json.loads(stdout(nb.cells[-1]))
    nb.cells.pop()
    return nb, probe


def stdout(cell: Any) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")


def text(nb: Any) -> str:
    return "".join(stdout(c) for c in nb.cells if c.cell_type == "code")


def pngs(cells: list[Any]) -> int:
    return sum(
        "image/png" in o.get("data", {}) for c in cells if c.cell_type == "code" for o in c.outputs
    )


def cell(nb: Any, ident: str) -> Any:
    return next(c for c in nb.cells if c.get("id") == ident)


def check_accuracy(out: str, folder: Path, build: Path) -> None:
    """The accuracy line: the count the integer form predicts, of all the samples."""
    with np.load(folder / SAMPLES) as data:
        images, labels = data["images"], data["labels"]
    if (labels < 0).all():  # a deployment without data: random images, no labels
        assert "accuracy: not measured (the images have no labels)" in out, out
        return
    match = ACCURACY.search(out)
    assert match, out
    want = int((reference_top1(build, images) == labels).sum())
    n = len(labels)
    assert (int(match.group(1)), int(match.group(2))) == (want, n), match.group(0)
    assert float(match.group(3)) == pytest.approx(100 * want / n, abs=0.01)


# ---- inference ------------------------------------------------------------------------------


def test_inference_on_the_simulation(deploy_folder: Path, tiny_board: Path, kernels: Path) -> None:
    env = kernel_env(BIREAL_DEPLOY=str(deploy_folder))  # no BIREAL_BACKEND: pick_backend
    nb, probe = execute(deploy_folder / "notebooks" / INFERENCE, kernels, env)
    assert probe["executable"] == sys.executable
    out = text(nb)
    assert "backend: sim" in out and "PYNQ-Z2" in out, out
    check_accuracy(out, deploy_folder, tiny_board)
    assert re.search(
        r"^throughput: [\d,]+ images/s wall clock, [\d,]+ images/s by the cycle", out, re.M
    )
    assert re.search(
        r"^batch of 1: latency [\d.]+ ms wall clock, [\d.]+ us by the cycle", out, re.M
    )
    summary = json.loads(stdout(cell(nb, "summary")))
    assert f"bit-exact: {N_SAMPLES}/{N_SAMPLES} images equal PyTorch's integer form" in out, out
    assert summary["bit_exact"] is True
    assert summary["backend"] == "sim" and summary["images"] == N_SAMPLES
    assert summary["run"]["images"] == N_SAMPLES and summary["run"]["fps_cycles"] > 0
    assert summary["latency_batch_of_1"]["cycles_s"] > 0
    assert (
        pngs([cell(nb, "grid")]) == 1 and pngs([cell(nb, "per-class-plot")]) == 1
    )  # the grid, the accuracy per class


def test_inference_on_the_board_path_with_numpy_alone(
    deploy_folder: Path, tiny_board: Path, kernels: Path
) -> None:
    """The board backend on the pynq stand-in; the cells without figures, with the compiler's
    packages and matplotlib unimportable."""
    path = os.pathsep.join(p for p in (str(STANDINS), ENV.get("PYTHONPATH")) if p)
    env = kernel_env(
        BIREAL_DEPLOY=str(deploy_folder),
        BIREAL_BACKEND="board",
        PYTHONPATH=path,
        PYNQ_STANDIN_SIM=str(deploy_folder / names.SHELL_SIM),
    )
    block = f"import sys\nfor m in {BLOCKED!r}:\n    sys.modules[m] = None"
    nb, probe = execute(
        deploy_folder / "notebooks" / INFERENCE, kernels, env, figures=False, prelude=block
    )
    assert probe["executable"] == sys.executable and str(STANDINS) in probe["path"]
    out = text(nb)
    assert "backend: board" in out and "board: PYNQ-Z2" in out, out
    check_accuracy(out, deploy_folder, tiny_board)
    summary = json.loads(stdout(cell(nb, "summary")))
    assert summary["backend"] == "board" and summary["bit_exact"] is True
    assert f"bit-exact: {N_SAMPLES}/{N_SAMPLES} images" in out, out
    assert pngs(nb.cells) == 0


# ---- inspect ----------------------------------------------------------------------------------


def with_yosys(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` as a build with synthesis would have it: Yosys' numbers per layer (the cost
    model's, a little off, and FIFOs), its totals and verdict."""
    r = copy.deepcopy(report)
    per = {
        n: {k: round(1.1 * v) if k == "LUT" else v for k, v in p.items() if k in RESOURCES}
        for n, p in r["estimates"]["per_layer"].items()
    }
    per["StreamingFIFO_0"] = {"LUT": 40, "FF": 20, "BRAM36": 0.5, "URAM": 0, "DSP": 0}
    total = {k: sum(p.get(k, 0) for p in per.values()) for k in RESOURCES}
    r["rtl"]["resources"] = {"tool": "yosys synth_xilinx", "total": total, "per_layer": per}
    r["rtl"]["fits"] = True
    r["fit_yosys"] = {"checked": True, "fits": True, "over": [], "cost_model_fits": True}
    r["config"]["synth"] = True
    return r


def folding_only(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` of a build stopped after folding."""
    keep = ("version", "code", "source", "board", "config", "stages", "spec", "folding")
    r = {k: report[k] for k in keep if k in report}
    r["estimates"] = report["estimates"]
    r["fit_estimate"] = report["fit_estimate"]
    r["missing_stages"] = ["rtl", "rtlsim", "shell", "bitstream"]
    r["complete"] = False
    return r


@pytest.mark.parametrize("variant", ["deploy", "yosys", "folding-only"])
def test_inspect(deploy_folder: Path, kernels: Path, tmp_path: Path, variant: str) -> None:
    report = json.loads((deploy_folder / names.REPORT).read_text())
    bottleneck = report["estimates"]["bottleneck"]
    if variant == "deploy":  # no BIREAL_DEPLOY: the notebook's folder's parent
        env = kernel_env(BIREAL_DEPLOY=None)
    else:
        made = with_yosys(report) if variant == "yosys" else folding_only(report)
        (tmp_path / names.REPORT).write_text(json.dumps(made))
        env = kernel_env(BIREAL_DEPLOY=str(tmp_path))
    nb, probe = execute(deploy_folder / "notebooks" / INSPECT, kernels, env)
    assert probe["executable"] == sys.executable
    out = text(nb)
    where = deploy_folder if variant == "deploy" else tmp_path
    assert f"report: {(where / names.REPORT).resolve()}" in out, out
    assert f"*{bottleneck}" in out and "PE" in out and "SIMD" in out, out
    assert re.search(r"^cost model: fits", out, re.M), out
    if variant == "deploy":
        assert "No Yosys numbers in this report (the build ran with synthesis off)" in out, out
        assert "Yosys: not run (synthesis off)" in out and "Vivado (done): fits" in out, out
    elif variant == "yosys":
        assert re.search(r"^Yosys: \d+ entries; [1-9]\d* FIFOs and width converters", out, re.M)
        assert "Yosys: fits" in out, out
    else:
        assert "Yosys: not run" in out and "Vivado: not run" in out, out
    assert pngs(nb.cells) >= 4, out  # cycles, folding, resources per layer, utilization


# ---- the stored notebooks ---------------------------------------------------------------------


def imported(source: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("name", [INFERENCE, INSPECT])
def test_stored_notebooks_are_clean(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4 and nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    for c in code:
        assert c.outputs == [] and c.execution_count is None, c.source[:60]
    first = code[0].source
    assert 'FOLDER = Path(os.environ.get("BIREAL_DEPLOY", ".."))' in first
    if name == INFERENCE:
        assert 'BACKEND = os.environ.get("BIREAL_BACKEND") or pick_backend()' in first
    for c in code:
        figure = "figure" in c.metadata.get("tags", [])
        draws = "matplotlib" in c.source or "plt." in c.source
        assert figure == draws, f"cell {c.get('id')}: figure tag {figure}, draws {draws}"
        for module in imported(c.source):
            top = module.split(".")[0]
            assert top in ALLOWED_IMPORTS or module == "bireal_fpga.driver", (c.get("id"), module)
