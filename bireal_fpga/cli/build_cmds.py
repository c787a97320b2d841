"""``bireal-fpga build``, ``steps``, ``verify`` and ``sim``: the build flow and its checks.

These commands only parse and print; the flow is :mod:`bireal_fpga.flow`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from bireal_fpga.errors import BiRealError

# build options that map one to one onto BuildConfig fields
CONFIG_OPTIONS = (
    "board",
    "out_dir",
    "target_fps",
    "folding_config",
    "cost_model",
    "top1",
    "n_check",
    "seed",
    "cppsim",
    "synth",
    "fit_iterations",
    "jobs",
    "from_step",
    "to_step",
    "bitstream_dir",
)


@click.command()
@click.argument("source", required=False)
@click.option("--config", "config_file", default=None, help="build config .json/.yaml")
@click.option("--board", default=None, help="target board (ZCU104, PYNQ-Z1, PYNQ-Z2, ...)")
@click.option("--out", "out_dir", default=None, help="the build folder")
@click.option(
    "--until",
    type=click.Choice(["integer", "qonnx", "hw", "rtl", "bitstream"]),
    default=None,
    help="stop after this group of steps: integer form, QONNX export, HW layers + folding + "
    "estimates, RTL (FIFO sizing, generation, stitched simulation, Yosys) or bitstream (shell, "
    "its simulation, Vivado project, Vivado); the same as --to-step with the group's last step",
)
@click.option("--from-step", default=None, help="rerun from this step (see `bireal-fpga steps`)")
@click.option("--to-step", default=None, help="stop after this step")
@click.option("--target-fps", default=None, help="'max' or frames/s (default: the board preset's)")
@click.option(
    "--bitstreams",
    "bitstream_dir",
    default="bitstreams",
    show_default=True,
    help="where a good bitstream is published (<DIR>/<BOARD>/)",
)
@click.option("--folding", "folding_config", default=None, help="folding-config JSON to apply")
@click.option(
    "--cost-model",
    type=click.Choice(["rtl", "finn"]),
    default="rtl",
    show_default=True,
    help="what folding prices the design with: this project's RTL, or FINN's HLS models",
)
@click.option("--top1", is_flag=True, help="output the best class index instead of the scores")
@click.option(
    "--n",
    "n_check",
    default=32,
    show_default=True,
    type=click.IntRange(min=1),
    help="random images of the golden check, the FIFO sizing check and the stitched simulation",
)
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0))
@click.option(
    "--cppsim/--no-cppsim",
    default=False,
    show_default=True,
    help="check the folded graph in finn-hlslib C++ (g++) on the --n images",
)
@click.option("--synth/--no-synth", default=True, show_default=True, help="Yosys estimates")
@click.option(
    "--fit-iterations",
    default=3,
    show_default=True,
    type=click.IntRange(min=0),
    help="--target-fps max: refold this many times when Yosys says the design does not fit",
)
@click.option("--jobs", default=2, show_default=True, type=click.IntRange(min=1))
@click.pass_context
def build(
    ctx: click.Context,
    source: str | None,
    config_file: str | None,
    until: str | None,
    **options: Any,
) -> None:
    """Build SOURCE (checkpoint, spec, a Brevitas QONNX file from export_qonnx, or the
    qonnx.onnx of an earlier build; default: the board's model) for BOARD into a build
    folder.

    Every step records what it read: a rerun reuses the steps whose inputs did not change and
    continues an interrupted build. Flags override the values of --config.
    """
    from bireal_fpga.flow import BuildConfig, load_config
    from bireal_fpga.flow import build as run_build
    from bireal_fpga.flow.runner import source_kind
    from bireal_fpga.flow.steps import last_of_group

    given = {
        name: value
        for name, value in options.items()
        if ctx.get_parameter_source(name) != ParameterSource.DEFAULT
    }
    if source is None and config_file is None and options["board"] is not None:
        from bireal_fpga.models.shipped import default_source

        # the board's shipped checkpoint (models/manifest.json), else the board preset's model
        source = default_source(options["board"])
    if source is not None:
        given["source"] = source
    if config_file is not None:
        cfg = load_config(config_file, **given)
    else:
        required = (
            (options["board"], "--board"),
            (options["out_dir"], "--out"),
        )
        for value, flag in required:
            if value is None:
                raise BiRealError(f"missing {flag} (or give --config FILE)")
        fields = {k: v for k, v in options.items() if k in CONFIG_OPTIONS and v is not None}
        cfg = BuildConfig.from_dict({**fields, "source": source})
    if until is not None:
        if "to_step" in given:
            raise BiRealError("give --until or --to-step, not both")
        cfg = cfg.replace(to_step=last_of_group(until, kind=source_kind(cfg.source)))
    result = run_build(cfg, log=lambda msg: click.echo(msg, err=True))
    report = result.report
    for line in summary_lines(report):
        click.echo(f"[build] {line}", err=True)
    for skipped in report.get("skipped", []):  # the last line says what did not run
        click.echo(f"{skipped['name']} skipped: {skipped['reason']}", err=True)
    summary = {k: report[k] for k in ("complete", "stages", "missing_stages")}
    summary["skipped"] = report.get("skipped", [])
    if "estimates" in report:
        est = report["estimates"]
        summary["estimates"] = {k: est[k] for k in ("fps", "clock_mhz", "bottleneck", "fits")}
    if "rtl" in report:
        rtl = report["rtl"]
        summary["rtl"] = {k: rtl.get(k) for k in ("fps", "clock_mhz", "bottleneck", "fits")}
    click.echo(json.dumps(summary))


def summary_lines(report: dict[str, Any]) -> list[str]:
    """What a finished build tells its user, in a few lines."""
    lines = []
    board = report["board"]["name"]
    if "estimates" in report:
        e = report["estimates"]
        t = e["total"]
        lines.append(
            f"estimated {e['fps']:.0f} FPS at {e['clock_mhz']:g} MHz (bottleneck "
            f"{e['bottleneck']}); {e['cost_model']} cost model: LUT {t['LUT']:.0f}, BRAM36 "
            f"{t['BRAM36']:.1f}, URAM {t['URAM']:.0f}, DSP {t['DSP']:.0f}; fits {board}: "
            f"{e['fits']}"
        )
    rtl = report.get("rtl") or {}
    if "rtlsim" in rtl:
        meas = rtl["fps"]["measured"]
        lines.append(
            f"RTL: stitched simulation of {rtl['rtlsim']['n']} images == PyTorch integer form; "
            f"{rtl['interval_cycles']['measured']} cycles/frame measured "
            f"({rtl['interval_cycles']['estimated']} estimated) -> "
            + (f"{meas:.0f}" if meas else "n/a")
            + f" FPS at {rtl['clock_mhz']:g} MHz (bottleneck {rtl['bottleneck']})"
        )
    if rtl.get("resources"):
        t = rtl["resources"]["total"]
        m = rtl["cost_model"]["total"]
        lines.append(
            f"Yosys: LUT {t['LUT']:.0f}, FF {t['FF']:.0f}, BRAM36 {t['BRAM36']:g}, URAM "
            f"{t['URAM']:.0f}, DSP {t['DSP']:.0f}; fits {board}: {rtl['fits']} (cost model: "
            f"LUT {m['LUT']:.0f}, BRAM36 {m['BRAM36']:g})"
        )
    fit = report.get("fit_loop")
    if fit:
        lines.append(
            f"fit loop: {len(fit['iterations'])} refolding(s) after Yosys; correction "
            + ", ".join(f"{k} x{v:.3f}" for k, v in fit.get("correction", {}).items())
        )
    check = (report.get("shell") or {}).get("check")
    if check:
        lines.append(
            f"shell: {check['n']} images in batches of "
            + ", ".join(str(b["images"]) for b in check["batches"])
            + " through the AXI-Lite registers and DMA streams (random back-pressure) == "
            "PyTorch integer form, TLAST on each batch's last beat"
        )
    viv = report.get("vivado") or {}
    if viv.get("status") == "done":
        t = viv.get("timing") or {}
        lines.append(
            f"Vivado {viv.get('version')}: WNS {t.get('wns_ns')} ns at {t.get('clock_mhz')} "
            f"MHz; bitstream {viv.get('published') or viv.get('bitstream')}"
        )
    elif viv.get("project"):
        lines.append(f"Vivado project: {viv['project']} (finish it: {viv.get('command')})")
    done = [s["name"] for s in report["stages"] if not s.get("skipped")]
    if report["missing_stages"]:
        lines.append(
            f"stopped after step '{done[-1] if done else '-'}'; not run: "
            + ", ".join(report["missing_stages"])
        )
    else:
        lines.append("complete: every step ran")
    return lines


@click.command()
@click.option("--json", "as_json", is_flag=True, help="print the table as JSON")
def steps(as_json: bool) -> None:
    """The build's steps: what each reads and writes (the table of bireal_fpga.flow.steps)."""
    from bireal_fpga.flow import STEPS

    rows = [
        {
            "name": s.name,
            "group": s.group,
            "reads": list(s.reads),
            "writes": list(s.writes),
            "config": list(s.config),
            "board": list(s.board),
            "sources": list(s.sources),
            "summary": s.summary,
        }
        for s in STEPS
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        only = "" if len(r["sources"]) > 1 else f" [{r['sources'][0]} source]"
        click.echo(f"{r['name']:<13} {r['group']:<9} {r['summary']}{only}")
        click.echo(
            f"{'':<23}reads {', '.join(r['reads']) or '-'}; writes {', '.join(r['writes']) or '-'}"
        )


# the stitched simulation's processes (verify --stages rtlsim, sim)
JOBS_OPTION = click.option(
    "--jobs",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="rtlsim: simulator processes run at once on parts of the images (0: one per core)",
)


@click.command()
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
    from bireal_fpga.flow import verify as run_verify

    result = run_verify(
        build_dir,
        [s.strip() for s in stages.split(",") if s.strip()],
        n=n,
        images=images_file,
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
        click.echo(
            f"float top-1 agreement {result['float_top1_agreement']:.4f} "
            f"({result['float_top1_disagreements']} images disagree)"
        )
    if any(r["mismatches"] for r in result["stages"].values()):
        sys.exit(1)


@click.command()
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
    from bireal_fpga.flow import simulate

    result = simulate(build_dir, n=n, images=images_file, seed=seed, jobs=jobs or None)
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


COMMANDS = [build, steps, verify, sim]
