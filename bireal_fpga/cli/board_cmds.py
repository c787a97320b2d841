"""Commands for the board: ``deploy`` (a folder to copy to it) and ``run`` (a build or a
deployment on the board or the simulation, from the command line)."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.argument("build_dir", type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="new folder")
@click.option("--data", default=None, help="data set of the sample images (its test split)")
@click.option("--samples", "n_samples", default=256, show_default=True, type=int)
@click.option("--sim-only", is_flag=True, help="deploy a build without a bitstream")
def deploy(build_dir: Path, out: Path, data: str | None, n_samples: int, sim_only: bool) -> None:
    """A folder to copy to the board: driver, bitstream, simulation, notebooks, samples."""
    from bireal_fpga.deploy import deploy as run_deploy

    done = run_deploy(build_dir, out, data=data, n_samples=n_samples, sim_only=sim_only)
    click.echo(f"deployed to {done}: see {done / 'README.md'}")


@click.command(name="run")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--backend", type=click.Choice(["auto", "board", "sim"]), default="auto")
@click.option("--images", "images_file", required=True, help=".npz with images [N, H, W, C]")
@click.option("--batch-size", default=None, type=int)
@click.option("--timeout", "timeout_s", default=None, type=float, help="per batch, seconds")
@click.option("--json", "as_json", is_flag=True)
def run(
    folder: Path,
    backend: str,
    images_file: str,
    batch_size: int | None,
    timeout_s: float | None,
    as_json: bool,
) -> None:
    """Run images (an .npz: ``images`` uint8 [N, H, W, C], optional ``labels``) through the
    accelerator of a build or deployment; prints accuracy (with labels), FPS and latency."""
    import numpy as np

    from bireal_fpga.driver import Accelerator, InputError

    try:
        with np.load(images_file) as z:
            images = z["images"]
            labels = z["labels"] if "labels" in z.files else None
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"'{images_file}' is not an .npz with 'images' ({exc})") from None
    with Accelerator.open(folder, backend, batch_size=batch_size, timeout_s=timeout_s) as acc:
        top1 = acc.run(images, top1=True)
        result = {**acc.describe(), **acc.stats.as_dict()}
    if labels is not None and (labels >= 0).all():
        result["correct"] = int((top1 == labels).sum())
        result["accuracy"] = result["correct"] / len(labels)
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"{result['backend']}: {result['images']} images, build {result['build_id']}")
    if "accuracy" in result:
        n = result["images"]
        click.echo(f"top-1 {result['correct']}/{n} = {100 * result['accuracy']:.2f} %")
    click.echo(
        f"{result['fps']:,.0f} FPS wall clock, {result['fps_cycles']:,.0f} FPS by the cycle "
        f"counter at {result['clock_mhz']:g} MHz"
    )


COMMANDS = [deploy, run]
