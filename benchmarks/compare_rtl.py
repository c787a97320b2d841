"""Compare the generated RTL of two build folders, file by file.

FINN names some tensors at random (``Transformation``s call ``util.random_string``); two builds
of different code can therefore name the same stream differently. This script maps the tensor
names of A to those of B through the two ``rtl.onnx`` graphs (the same node's inputs and outputs,
nodes matched by name), substitutes them in A's text, and reports for every file of ``rtl/``
whether it is byte-identical, equal up to those names (and the top's "from <graph>" comment),
or different, with the differing lines. Used to check a refactoring leaves the hardware alone:

    .venv/bin/python benchmarks/compare_rtl.py OLD_BUILD NEW_BUILD [--json OUT.json]

Exit status 0 when no file differs beyond names, 1 otherwise.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import re
import sys
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper


def tensor_mapping(a: Path, b: Path) -> dict[str, str]:
    """A's tensor names -> B's, through the nodes of the two ``rtl.onnx`` (matched by name)."""
    ga, gb = ModelWrapper(str(a / "rtl.onnx")), ModelWrapper(str(b / "rtl.onnx"))
    nodes_b = {n.name: n for n in gb.graph.node}
    mapping: dict[str, str] = {}
    for n in ga.graph.node:
        if n.name not in nodes_b:
            raise SystemExit(f"{b / 'rtl.onnx'}: has no node '{n.name}' of {a / 'rtl.onnx'}")
        m = nodes_b[n.name]
        for x, y in zip([*n.input, *n.output], [*m.input, *m.output], strict=False):
            if x != y:
                mapping[x] = y
    return mapping


def compare(a: Path, b: Path) -> dict:
    mapping = tensor_mapping(a, b)
    cmp = filecmp.dircmp(a / "rtl", b / "rtl")
    _, differ, errors = filecmp.cmpfiles(a / "rtl", b / "rtl", cmp.common_files, shallow=False)
    pattern = re.compile("|".join(re.escape(x) for x in sorted(mapping, key=len, reverse=True)))
    files: dict[str, dict] = {}
    for name in sorted(differ):
        ta, tb = (a / "rtl" / name).read_text(), (b / "rtl" / name).read_text()
        if mapping:
            ta = pattern.sub(lambda m: mapping[m.group(0)], ta)
        ta = re.sub(r"from \w+\.onnx;", "from rtl.onnx;", ta)
        tb = re.sub(r"from \w+\.onnx;", "from rtl.onnx;", tb)
        if ta == tb:
            files[name] = {"status": "equal up to tensor names"}
            continue
        la, lb = ta.splitlines(), tb.splitlines()
        lines = [
            {"line": i + 1, "a": x.strip(), "b": y.strip()}
            for i, (x, y) in enumerate(zip(la, lb, strict=False))
            if x != y
        ]
        files[name] = {"status": "differs", "lines": lines, "line_count_change": len(lb) - len(la)}
    return {
        "a": str(a),
        "b": str(b),
        "files": len(cmp.common_files),
        "only_in_a": sorted(cmp.left_only),
        "only_in_b": sorted(cmp.right_only),
        "unreadable": sorted(errors),
        "byte_identical": len(cmp.common_files) - len(differ),
        "tensor_names_mapped": len(mapping),
        "different": files,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path, help="build folder (with rtl.onnx and rtl/)")
    ap.add_argument("b", type=Path, help="build folder to compare with")
    ap.add_argument("--json", type=Path, default=None, help="write the comparison here")
    args = ap.parse_args()
    result = compare(args.a, args.b)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{result['files']} files: {result['byte_identical']} byte-identical, "
        f"{len(result['different'])} not ({result['tensor_names_mapped']} tensor names mapped)"
    )
    for side in ("only_in_a", "only_in_b", "unreadable"):
        if result[side]:
            print(f"  {side}: {', '.join(result[side])}")
    real = 0
    for name, info in result["different"].items():
        if info["status"] != "differs":
            print(f"  {name}: {info['status']}")
            continue
        real += 1
        print(f"  {name}: differs in {len(info['lines'])} lines")
        for d in info["lines"][:3]:
            print(f"    {d['line']}: {d['a']}\n    {' ' * len(str(d['line']))}  {d['b']}")
    bad = real or result["only_in_a"] or result["only_in_b"] or result["unreadable"]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
