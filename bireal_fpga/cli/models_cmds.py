"""``bireal-fpga models``, ``boards`` and ``info``: the presets and the size of a spec."""

from __future__ import annotations

import json

import click


@click.command()
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
