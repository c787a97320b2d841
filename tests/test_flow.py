"""The build flow: one table of steps over a build folder that reuses, resumes and never mixes.

Builds of the ``tiny`` preset for PYNQ-Z2. Most tests stop after ``folding`` (seconds); the
resume test kills a real ``bireal-fpga build`` in the middle of FIFO sizing and checks that
the resumed build ends with outputs identical to one uninterrupted build.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import ENV, assert_error, assert_ok, cli

from bireal_fpga import names
from bireal_fpga.errors import BiRealError
from bireal_fpga.flow import STEPS, BuildConfig, BuildState, Step, build, load_config
from bireal_fpga.flow.config import ConfigError
from bireal_fpga.flow.records import read_record
from bireal_fpga.flow.runner import BuildError
from bireal_fpga.spec import load_spec

QUIET = {"log": lambda _msg: None}


def stages(folder: Path) -> dict[str, bool]:
    """``{step: reused}`` of the last build into ``folder``."""
    report = json.loads((folder / names.REPORT).read_text())
    return {s["name"]: s["reused"] for s in report["stages"]}


def output_hashes(folder: Path) -> dict[str, dict[str, str | None]]:
    """Every step's recorded output hashes."""
    out = {}
    for path in sorted((folder / names.FLOW_DIR).glob("*.json")):
        record = read_record(path)
        assert record is not None, path
        out[record.step] = record.outputs
    return out


def copy_build(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, symlinks=True)
    return dest


# ---- the config ---------------------------------------------------------------------------------


def test_config_round_trips_json_and_yaml(tmp_path: Path) -> None:
    cfg = BuildConfig("tiny", "PYNQ-Z2", str(tmp_path / "b"), target_fps=2500, top1=True)
    assert cfg.target_fps == "2500"
    for suffix in (".json", ".yaml"):
        path = tmp_path / f"build{suffix}"
        cfg.save(path)
        assert load_config(path) == cfg
    assert load_config(tmp_path / "build.yaml", n_check=4).n_check == 4


@pytest.mark.parametrize(
    "fields,named",
    [
        ({"sorce": "tiny"}, "sorce"),
        ({"target_fps": "fast"}, "target_fps"),
        ({"target_fps": -3}, "target_fps"),
        ({"cost_model": "vivado"}, "cost_model"),
        ({"n_check": 0}, "n_check"),
        ({"synth": "yes"}, "synth"),
    ],
    ids=["unknown-field", "fps-word", "fps-negative", "cost-model", "n-check", "synth-str"],
)
def test_config_rejects_bad_fields(fields: dict, named: str) -> None:
    base = {"source": "tiny", "board": "PYNQ-Z2", "out_dir": "x"}
    with pytest.raises(ConfigError, match=named):
        BuildConfig.from_dict({**base, **fields})


def test_cli_config_file_with_flags_overriding_it(tmp_path: Path) -> None:
    out = tmp_path / "b"
    config = tmp_path / "build.yaml"
    config.write_text(
        yaml.safe_dump({"source": "tiny", "board": "PYNQ-Z2", "out_dir": str(out), "to_step": "hw"})
    )
    assert_ok(cli("build", "--config", config, "--to-step", "qonnx", "--seed", "3"))
    assert list(stages(out)) == ["model", "integer", "golden-check", "qonnx"]
    written = load_config(out / names.CONFIG)
    assert (written.to_step, written.seed, written.board) == ("qonnx", 3, "PYNQ-Z2")
    assert_error(cli("build", "--config", config, "--target-fps", "fast"), "target_fps", "fast")
    assert_error(cli("build", "--config", tmp_path / "none.yaml"), "none.yaml")
    assert_error(cli("build", "tiny", "--out", out), "--board")


def test_steps_command_lists_the_table() -> None:
    proc = cli("steps", "--json")
    assert_ok(proc)
    rows = json.loads(proc.stdout)
    assert [r["name"] for r in rows] == [s.name for s in STEPS]
    written = {w for r in rows for w in r["writes"]}
    for r in rows:  # every input is written by a step before it (fit.json: by the runner)
        before = {w for q in rows[: rows.index(r)] for w in q["writes"]}
        for need in r["reads"]:
            assert need in before or need == names.FIT, (r["name"], need)
    assert names.FIT not in written


# ---- reuse -------------------------------------------------------------------------------------


def test_a_rerun_reuses_every_step(tiny_hw: Path, tmp_path: Path) -> None:
    folder = copy_build(tiny_hw, tmp_path / "b")
    before = output_hashes(folder)
    build(BuildConfig("tiny", "PYNQ-Z2", str(folder), to_step="folding"), **QUIET)
    assert all(stages(folder).values()), stages(folder)
    assert output_hashes(folder) == before


def test_changing_the_board_reruns_from_the_first_board_step(tiny_hw: Path, tmp_path: Path):
    folder = copy_build(tiny_hw, tmp_path / "b")
    build(BuildConfig("tiny", "ZCU104", str(folder), to_step="folding"), **QUIET)
    reused = stages(folder)
    assert reused == {
        "model": True,
        "integer": True,
        "golden-check": True,
        "qonnx": True,
        "hw": True,
        "specialize": False,
        "folding": False,
    }
    report = json.loads((folder / names.REPORT).read_text())
    assert report["board"]["name"] == "ZCU104" and report["estimates"]["clock_mhz"] == 250


def test_changing_the_checkpoint_reruns_from_the_first_step(tmp_path: Path) -> None:
    import torch

    from bireal_fpga.models.bireal import BiRealNet
    from bireal_fpga.models.calibration import calibrated_random_model
    from bireal_fpga.train.checkpoint import save_checkpoint

    ckpt = tmp_path / "net.pt"
    spec = load_spec("tiny")
    for seed in (0, 1):
        torch.manual_seed(seed)
        save_checkpoint(ckpt, calibrated_random_model(BiRealNet(spec), seed=seed))
        folder = tmp_path / "b"
        build(BuildConfig(str(ckpt), "PYNQ-Z2", str(folder), to_step="qonnx"), **QUIET)
        if seed == 0:
            first = output_hashes(folder)
            assert not any(stages(folder).values())
    assert not any(stages(folder).values()), stages(folder)
    assert output_hashes(folder)["model"] != first["model"]
    # the same checkpoint under another path is the same source
    moved = tmp_path / "moved.pt"
    shutil.copyfile(ckpt, moved)
    build(BuildConfig(str(moved), "PYNQ-Z2", str(folder), to_step="qonnx"), **QUIET)
    assert all(stages(folder).values())


def test_a_corrupted_artefact_is_detected_and_rebuilt(tiny_hw: Path, tmp_path: Path) -> None:
    folder = copy_build(tiny_hw, tmp_path / "b")
    before = output_hashes(folder)
    with open(folder / names.HW, "ab") as f:
        f.write(b"\0")
    logs: list[str] = []
    build(BuildConfig("tiny", "PYNQ-Z2", str(folder), to_step="folding"), log=logs.append)
    assert any(f"'{names.HW}' changed" in line for line in logs), logs
    reused = stages(folder)
    assert reused["hw"] is False and reused["qonnx"] is True
    # the rebuilt hw.onnx is the original again, so the steps after it stay valid
    assert reused["specialize"] is True and reused["folding"] is True
    assert output_hashes(folder) == before


def test_a_changed_input_deletes_the_later_outputs(tiny_hw: Path, tmp_path: Path) -> None:
    """A build that stops early keeps the later steps' outputs only while they are still what
    the current config would make; a failed step leaves nothing half-made."""
    folder = copy_build(tiny_hw, tmp_path / "b")
    (folder / "notes.txt").write_text("x")  # a file no step owns stays untouched
    build(BuildConfig("tiny", "PYNQ-Z2", str(folder), to_step="hw"), **QUIET)
    assert (folder / names.FOLDED).is_file()  # folding's inputs and config are unchanged
    cfg = BuildConfig("tiny", "PYNQ-Z2", str(folder), target_fps=1000, to_step="specialize")
    build(cfg, **QUIET)
    assert not (folder / names.FOLDED).exists()  # made for another target: gone
    assert not (folder / names.FLOW_DIR / "folding.json").exists()
    with pytest.raises(BiRealError, match="out of reach"):
        build(cfg.replace(target_fps="1e9", to_step="folding"), **QUIET)
    assert not (folder / names.FOLDED).exists()
    assert not (folder / names.FLOW_DIR / "folding.json").exists()
    assert not (folder / names.FLOW_DIR / "staging" / "folding").exists()
    report = json.loads((folder / names.REPORT).read_text())
    assert report["complete"] is False and "folding" in report["missing_stages"]
    assert (folder / names.SPECIALIZED).is_file() and (folder / "notes.txt").is_file()


def test_from_step_reruns_from_there(tiny_hw: Path, tmp_path: Path) -> None:
    folder = copy_build(tiny_hw, tmp_path / "b")
    build(
        BuildConfig("tiny", "PYNQ-Z2", str(folder), from_step="specialize", to_step="folding"),
        **QUIET,
    )
    reused = stages(folder)
    assert [k for k, v in reused.items() if not v] == ["specialize", "folding"]


def test_a_user_step_plugs_into_the_table(tiny_hw: Path, tmp_path: Path) -> None:
    """Users add, replace and stop at steps of their own (the Python API)."""
    calls: list[str] = []

    def step_count_nodes(state: BuildState, cfg: BuildConfig) -> BuildState:
        from qonnx.core.modelwrapper import ModelWrapper

        calls.append(cfg.out_dir)
        model = ModelWrapper(str(state.input(names.FOLDED)))
        state.output("nodes.txt").write_text(f"{len(model.graph.node)}\n")
        return state.with_report(nodes=len(model.graph.node))

    mine = Step("count", step_count_nodes, reads=(names.FOLDED,), writes=("nodes.txt",))
    table = [*STEPS[: [s.name for s in STEPS].index("folding") + 1], mine]
    folder = copy_build(tiny_hw, tmp_path / "b")
    result = build(BuildConfig("tiny", "PYNQ-Z2", str(folder)), steps=table, **QUIET)
    assert result.report["nodes"] > 10 and result.path("nodes.txt").is_file()
    assert len(calls) == 1 and stages(folder)["count"] is False
    build(BuildConfig("tiny", "PYNQ-Z2", str(folder)), steps=table, **QUIET)
    assert len(calls) == 1 and stages(folder)["count"] is True

    def sloppy(state: BuildState, cfg: BuildConfig) -> BuildState:
        state.output("other.txt").write_text("?")
        return state

    bad = [*table[:-1], Step("count", sloppy, reads=(names.FOLDED,), writes=("nodes.txt",))]
    with pytest.raises(BuildError, match="did not write 'nodes.txt'"):
        build(BuildConfig("tiny", "PYNQ-Z2", str(folder)), steps=bad, **QUIET)
    assert not (folder / "other.txt").exists() and not (folder / "nodes.txt").exists()


def test_refuses_a_foreign_folder_and_a_busy_one(tiny_hw: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("...")
    with pytest.raises(BuildError, match="holds no bireal-fpga build"):
        build(BuildConfig("tiny", "PYNQ-Z2", str(foreign)), **QUIET)
    assert sorted(p.name for p in foreign.iterdir()) == ["thesis.tex"]
    folder = copy_build(tiny_hw, tmp_path / "b")
    with open(folder / names.FLOW_DIR / "lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        with pytest.raises(BuildError, match="in use by another build"):
            build(BuildConfig("tiny", "PYNQ-Z2", str(folder), to_step="folding"), **QUIET)


def test_unknown_steps_are_named() -> None:
    with pytest.raises(BuildError, match="'foldnig' is not a step"):
        build(BuildConfig("tiny", "PYNQ-Z2", "/nonexistent/x", to_step="foldnig"), **QUIET)


# ---- resume ------------------------------------------------------------------------------------


def test_killed_in_fifo_sizing_resumes_to_the_same_outputs(
    tiny_hw: Path, tiny_rtl: Path, tmp_path: Path
) -> None:
    """``--until hw``, then the rest of the build in a second command, which is killed in the
    middle of FIFO sizing and run again: the steps before it are reused, and every artefact
    equals that of one uninterrupted ``--until rtl`` build (``tiny_rtl``), folding included."""
    folder = copy_build(tiny_hw, tmp_path / "b")
    argv = [sys.executable, "-m", "bireal_fpga", "build", "tiny", "--board", "PYNQ-Z2"]
    argv += ["--out", str(folder), "--n", "8", "--no-synth"]
    proc = subprocess.Popen(
        argv, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    staging = folder / names.FLOW_DIR / "staging" / "fifo-sizing" / ".scratch" / "sizing"
    deadline = time.monotonic() + 300
    while not any(staging.rglob("sim.log")) and proc.poll() is None:
        assert time.monotonic() < deadline, "FIFO sizing did not start"
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    os.killpg(proc.pid, signal.SIGKILL)  # the build and its simulator processes
    proc.wait(timeout=60)
    assert not (folder / names.FLOW_DIR / "fifo-sizing.json").exists()
    assert not (folder / names.RTL_GRAPH).exists()
    done = cli(*argv[3:])
    assert_ok(done)
    reused = stages(folder)
    assert all(reused[s] for s in ("model", "qonnx", "hw", "specialize", "folding")), reused
    assert not any(reused[s] for s in ("fifo-sizing", "rtl", "rtlsim", "synth")), reused
    assert output_hashes(folder) == output_hashes(tiny_rtl)
    assert (folder / names.FOLDING_CONFIG).read_bytes() == (
        tiny_rtl / names.FOLDING_CONFIG
    ).read_bytes()


# ---- the fit loop ------------------------------------------------------------------------------


def test_the_fit_loop_folds_again_under_the_measured_overshoot(tiny_hw: Path, tmp_path: Path):
    """When the synthesis step reports that the design does not fit although the cost model
    said it would, the build folds again with the cost model corrected by the overshoot, until
    it fits. Yosys is stood in for by a step that reports the cost model's LUTs times a factor
    that makes the fastest folding overshoot the xc7z020 by 5 %. With Yosys the same check
    runs after every build's synth step; on the benchmark designs (Bi-Real-18-CIFAR untrained
    and trained, bireal-small-cifar) the calibrated cost model's verdict held, so no real
    Yosys verdict has made the loop refold yet."""
    fastest = json.loads((tiny_hw / names.REPORT).read_text())["estimates"]["total"]["LUT"]
    factor = 1.05 * 53200 / fastest

    def step_synth(state: BuildState, cfg: BuildConfig) -> BuildState:
        est = state.report["estimates"]
        lut = factor * est["total_uncorrected"]["LUT"]
        total = {**est["total_uncorrected"], "LUT": lut}
        fits = lut <= state.board.resources["LUT"]
        state.output(names.SYNTH).write_text(json.dumps({"lut": lut}))
        return state.with_report(rtl={"resources": {"total": total}, "fits": fits})

    stand_in = Step("synth", step_synth, reads=(names.FOLDED,), writes=(names.SYNTH,))
    table = [*STEPS[: [s.name for s in STEPS].index("folding") + 1], stand_in]
    folder = copy_build(tiny_hw, tmp_path / "b")
    first = json.loads((folder / names.REPORT).read_text())["estimates"]
    report = build(BuildConfig("tiny", "PYNQ-Z2", str(folder)), steps=table, **QUIET).report
    runs = [s["name"] for s in report["stages"] if not s["reused"]]
    iterations = report["fit_loop"]["iterations"]  # the first folding is tiny_hw's, reused
    assert runs == ["synth", *["folding", "synth"] * len(iterations)] and iterations
    assert report["rtl"]["fits"] is True
    assert report["fit_loop"]["correction"]["LUT"] == pytest.approx(factor, rel=1e-6)
    assert report["estimates"]["correction"] == {"LUT": pytest.approx(factor, rel=1e-6)}
    assert report["estimates"]["fps"] < first["fps"]
    assert all(it["over"] == ["LUT"] and not it["fits"] for it in report["fit_loop"]["iterations"])
    # the loop's state is an input of folding: a rerun reuses everything
    again = build(BuildConfig("tiny", "PYNQ-Z2", str(folder)), steps=table, **QUIET).report
    assert all(s["reused"] for s in again["stages"]), again["stages"]
    # with no refolding allowed, the verdict stands
    folder2 = copy_build(tiny_hw, tmp_path / "c")
    cfg = BuildConfig("tiny", "PYNQ-Z2", str(folder2), fit_iterations=0)
    report = build(cfg, steps=table, **QUIET).report
    assert report["rtl"]["fits"] is False and len(report["fit_loop"]["iterations"]) == 1
