"""The driver as an installable wheel (``bireal_fpga_driver-<version>-py3-none-any.whl``),
written directly (a wheel is a zip with ``.dist-info``): nothing is downloaded or built on
the board, ``pip install --no-deps --no-index`` installs it offline, and the same sources
give the same bytes (fixed timestamps, sorted entries).

It holds the driver and the numpy-only modules it imports (:data:`MODULES`), under the same
package names as in the full project, so notebooks import ``bireal_fpga.driver`` either way.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from importlib.resources import files as package_files
from pathlib import Path

DIST = "bireal_fpga_driver"
NAME = "bireal-fpga-driver"
REQUIRES_PYTHON = ">=3.10"  # PYNQ 3.0 and later
REQUIRES = ("numpy>=1.21",)
MODULES = (
    "errors.py",
    "names.py",
    "arch/__init__.py",
    "arch/shell.py",
    "arch/streams.py",
    "driver/__init__.py",
    "driver/accelerator.py",
    "driver/backends.py",
    "driver/board.py",
    "driver/errors.py",
    "driver/files.py",
    "driver/sim.py",
)
INIT = '''"""bireal-fpga's board driver alone (the wheel ``{name}``): ``bireal_fpga.driver``."""

__version__ = "{version}"
'''
EPOCH = (2026, 1, 1, 0, 0, 0)


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def wheel_files(version: str) -> dict[str, bytes]:
    """Every file of the wheel (path in the archive -> bytes), ``.dist-info`` included."""
    src = Path(str(package_files("bireal_fpga")))
    files = {"bireal_fpga/__init__.py": INIT.format(name=NAME, version=version).encode()}
    for rel in MODULES:
        files[f"bireal_fpga/{rel}"] = (src / rel).read_bytes()
    info = f"{DIST}-{version}.dist-info"
    meta = [
        "Metadata-Version: 2.1",
        f"Name: {NAME}",
        f"Version: {version}",
        "Summary: bireal-fpga's driver for its accelerators (PYNQ board or simulation)",
        f"Requires-Python: {REQUIRES_PYTHON}",
        *(f"Requires-Dist: {r}" for r in REQUIRES),
    ]
    files[f"{info}/METADATA"] = ("\n".join(meta) + "\n").encode()
    wheel = ["Wheel-Version: 1.0", "Generator: bireal-fpga", "Root-Is-Purelib: true"]
    files[f"{info}/WHEEL"] = ("\n".join([*wheel, "Tag: py3-none-any"]) + "\n").encode()
    files[f"{info}/top_level.txt"] = b"bireal_fpga\n"
    record = [f"{p},{_digest(d)},{len(d)}" for p, d in sorted(files.items())]
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    return files


def write_wheel(out_dir: Path, version: str) -> Path:
    """Write the wheel into ``out_dir``; its path."""
    path = Path(out_dir) / f"{DIST}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in sorted(wheel_files(version).items()):
            entry = zipfile.ZipInfo(name, date_time=EPOCH)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(entry, data)
    return path
