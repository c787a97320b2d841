"""``bireal-fpga models``, ``boards`` and ``info``: the presets and the size of a spec."""

from __future__ import annotations

import json

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.option(
    "--shipped",
    is_flag=True,
    help="list the shipped trained models (models/manifest.json), each file checked",
)
def models(as_json: bool, shipped: bool) -> None:
    """List the preset network specs (--shipped: the shipped trained models)."""
    from bireal_fpga.models.summary import summarize
    from bireal_fpga.spec import PRESETS

    if shipped:
        _shipped_models(as_json)
        return
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


def _shipped_models(as_json: bool) -> None:
    """``models --shipped``: the manifest's entries, every file verified (sha256)."""
    from dataclasses import asdict

    from bireal_fpga.models.shipped import (
        default_manifest,
        repo_root,
        shipped_models,
        verify_shipped,
    )

    manifest = default_manifest()
    entries = shipped_models()
    for entry in entries:
        verify_shipped(entry, repo_root())
    if as_json:
        click.echo(json.dumps([asdict(e) for e in entries], indent=2))
        return
    if not entries:
        why = "lists none" if manifest.is_file() else "does not exist"
        click.echo(f"no shipped models ({manifest} {why})")
        return
    click.echo(
        f"{'model':<28} {'boards':<22} {'dataset':<12} {'top-1 float':>11} {'top-1 int':>9}  path"
    )
    for e in entries:
        click.echo(
            f"{e.name:<28} {','.join(e.boards):<22} {e.dataset:<12} {e.top1_float:>11.4f} "
            f"{e.top1_int:>9.4f}  {e.path}"
        )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def boards(as_json: bool) -> None:
    """List the board presets: chip, PS, clock, and what `make build BOARD=...` builds."""
    from dataclasses import asdict

    from bireal_fpga.boards import board_names, load_board

    rows = [asdict(load_board(name)) for name in board_names()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(
        f"{'board':<11} {'part':<22} {'PS':<18} {'MHz':>4}  {'default model':<19} "
        f"{'target FPS':>10}"
    )
    for r in rows:
        click.echo(
            f"{r['name']:<11} {r['part']:<22} {r['ps']:<18} {r['clock_mhz']:>4g}  "
            f"{r['default_model']:<19} {r['target_fps']!s:>10}"
        )


@click.command()
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


COMMANDS = [models, boards, info]
