"""``bireal-fpga pack``: a trained checkpoint as a packed inference checkpoint, the form the
shipped models take (``models/README.md``). The format lives in
:mod:`bireal_fpga.train.packed`; the command checks, calls and prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from bireal_fpga.cli.train_cmds import check_out_file, out_file_option
from bireal_fpga.errors import BiRealError


def _read_card(path: Path) -> dict[str, Any]:
    """The model card of ``--card-json``: a JSON object."""
    if not path.is_file():
        raise BiRealError(f"--card-json '{path}' does not exist")
    try:
        card = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BiRealError(f"--card-json '{path}' is not valid JSON: {exc}") from None
    if not isinstance(card, dict):
        raise BiRealError(f"--card-json '{path}' must hold a JSON object")
    return card


@click.command()
@click.argument("ckpt", type=click.Path(path_type=Path))
@out_file_option("packed checkpoint (.pt) to write")
@click.option(
    "--card-json",
    type=click.Path(path_type=Path),
    default=None,
    help="a JSON object stored in the file as its model card",
)
def pack(ckpt: Path, out_file: Path, card_json: Path | None) -> None:
    """Write CKPT (binary mode) as a packed inference checkpoint: one bit per binary weight
    and its channel scales, the other tensors as they are, no training state. It builds the
    same integer form and float outputs as CKPT."""
    from bireal_fpga.errors import CheckpointError
    from bireal_fpga.train.checkpoint import load_checkpoint
    from bireal_fpga.train.packed import save_packed

    check_out_file(out_file, ".pt")
    if out_file.exists() and ckpt.exists() and out_file.resolve() == ckpt.resolve():
        raise BiRealError(f"--out '{out_file}' is CKPT itself: choose another file")
    card = _read_card(card_json) if card_json is not None else None
    ck = load_checkpoint(ckpt)
    if ck.mode != "binary":
        raise CheckpointError(
            f"checkpoint '{ckpt}' is in '{ck.mode}' mode (stage 1): only a binary-mode "
            "checkpoint can be packed"
        )
    try:
        save_packed(out_file, ck.build_model(), {**ck.card, **(card or {})})
    except CheckpointError as exc:
        raise CheckpointError(f"checkpoint '{ckpt}': {exc}") from None
    full, packed = ckpt.stat().st_size, out_file.stat().st_size
    click.echo(f"wrote {out_file}")
    click.echo(
        f"{ckpt}: {full:,} bytes; {out_file}: {packed:,} bytes ({full / packed:.1f}x smaller)"
    )


@click.command()
@click.argument("ckpt", type=click.Path(path_type=Path))
@click.option("--data", required=True, help="the data it was trained on (its test split is used)")
@click.option("--name", required=True, help="model name: models/<name>.pt and .md")
@click.option(
    "--board",
    "boards",
    multiple=True,
    required=True,
    help="a board preset this model is the default of (repeatable)",
)
@click.option(
    "--dataset",
    required=True,
    help='what the data are, as the card and manifest say it, e.g. "CIFAR-10 (JPEG copy)"',
)
@click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="repository root holding models/ (default: this checkout's)",
)
@click.option("--quiet", is_flag=True, help="no progress bar")
def ship(
    ckpt: Path,
    data: str,
    name: str,
    boards: tuple[str, ...],
    dataset: str,
    root: Path | None,
    quiet: bool,
) -> None:
    """Ship a trained CKPT: evaluate both forms on the test split of --data, write the packed
    models/<name>.pt, its model card models/<name>.md and the manifest entry (boards'
    default model from then on)."""
    from bireal_fpga.boards import load_board
    from bireal_fpga.models.shipped import repo_root
    from bireal_fpga.train.ship import ship_model

    names = [load_board(b).name for b in boards]  # refuses an unknown board, by name
    entry = ship_model(
        ckpt,
        data,
        name=name,
        boards=names,
        dataset=dataset,
        root=root if root is not None else repo_root(),
        progress=not quiet,
    )
    click.echo(
        f"shipped {entry.name} for {', '.join(entry.boards)}: top-1 integer "
        f"{entry.top1_int:.4f}, float {entry.top1_float:.4f}, top-1 differs on "
        f"{entry.disagreements} test images -> {entry.path}"
    )


COMMANDS = [pack, ship]
