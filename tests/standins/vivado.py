"""A stand-in `vivado` (tests only): runs the generated TCL in a real Tcl interpreter against
stand-ins of the Vivado commands, fakes Vivado's outputs, records how it was called (see
tests/test_vivado.py). Run as an executable (``#!python`` + this file) or exec'd in-process."""

# ruff: noqa: UP031 (Vivado-like messages are printf-formatted)

import json
import os
import re
import sys
import tkinter
from pathlib import Path

IP_VERSIONS = {
    "processing_system7": ["5.5"],
    "zynq_ultra_ps_e": ["3.4", "3.5"],
    "axi_dma": ["7.1"],
    "axi_interconnect": ["2.1"],
    "smartconnect": ["1.0"],
    "proc_sys_reset": ["5.0"],
}
DEFAULT_BOARD_PARTS = ("xilinx.com:zcu104:part0:1.1",)


class FakeExit(Exception):
    pass


class FakeVivado:
    """Vivado's Tcl commands, faked: records every call and checks pins against the IP."""

    def __init__(
        self, work, *, mode="ok", version="2023.2", board_parts=DEFAULT_BOARD_PARTS, fixtures=None
    ):
        self.work = Path(work)
        self.mode = mode
        self.version = version
        self.board_parts = tuple(board_parts)
        self.fixtures = Path(fixtures) if fixtures else None
        self.calls = []
        self.project = {}
        self.cells = {}  # name -> {"type": "ip"|"module", "vlnv"/"ref": ...}
        self.props = {}  # object -> {key: value}
        self.nets = []
        self.intf_nets = []
        self.addresses = []
        self.files = []
        self.exit_code = None
        self.tcl = tkinter.Tcl()
        self.tcl.eval("cd {%s}" % self.work)
        for name in dir(self):
            if name.startswith("cmd_"):
                self.tcl.createcommand(name[4:], self._wrap(name[4:], getattr(self, name)))

    # ---- running
    def _wrap(self, name, fn):
        def call(*args):
            self.calls.append((name, list(args)))
            out = fn(list(args))
            return "" if out is None else out

        return call

    def run(self, script, tclargs=()):
        """Source `script`; its exit status (Vivado's batch mode: 1 on a Tcl error)."""
        self.tcl.eval("set argv {%s}; set argc %d" % (" ".join(tclargs), len(tclargs)))
        try:
            self.tcl.eval("source {%s}" % script)
        except tkinter.TclError as exc:
            if self.exit_code is not None:
                return self.exit_code
            print(f"ERROR: [Common 17-39] {exc}")
            print(self.tcl.eval("set errorInfo"))
            return 1
        return self.exit_code or 0

    def fail(self, msg):
        raise tkinter.TclError(msg)

    def opts(self, args, flags=()):
        """`args` -> ({option: value}, [positional]); `flags` take no value."""
        o, pos, i = {}, [], 0
        while i < len(args):
            a = args[i]
            if a.startswith("-") and len(a) > 1 and not re.match(r"^-\d", a):
                if a in flags:
                    o[a] = True
                    i += 1
                else:
                    o[a] = args[i + 1]
                    i += 2
            else:
                pos.append(a)
                i += 1
        return o, pos

    def split(self, value):
        return list(self.tcl.splitlist(value))

    def prop(self, obj, key, default=""):
        return self.props.get(obj, {}).get(key, default)

    def config(self, cell, key, default=""):
        return self.prop(cell, "CONFIG." + key, default)

    # ---- pins the configured IP has
    def ip_of(self, cell):
        c = self.cells.get(cell)
        if c is None:
            self.fail(f"[BD 5-216] cell '{cell}' does not exist")
        if c["type"] == "module":
            return "module"
        return c["vlnv"].split(":")[2]

    def shell_ports(self, ref):
        for f in self.files:
            p = Path(f)
            if p.suffix == ".v" and p.is_file():
                text = p.read_text()
                if re.search(r"\bmodule\s+%s\b" % re.escape(ref), text):
                    return re.findall(r"\b(?:input|output)\s+wire\s+(?:\[[^\]]*\]\s*)?(\w+)", text)
        self.fail(f"[filemgmt 56-200] no module '{ref}' in the project's sources")

    def pins(self, cell, intf):
        ip = self.ip_of(cell)
        c = lambda k, d="": self.config(cell, k, d)  # noqa: E731
        if ip == "module":
            ports = self.shell_ports(self.cells[cell]["ref"])
            if not intf:
                return set(ports)
            return {p[: -len(s)] for p in ports for s in ("_tdata", "_awaddr") if p.endswith(s)}
        if ip == "processing_system7":
            pins = {"FCLK_CLK0", "FCLK_RESET0_N"} if not intf else {"DDR", "FIXED_IO"}
            if c("PCW_USE_M_AXI_GP0", "1") == "1":
                pins |= {"M_AXI_GP0_ACLK"} if not intf else {"M_AXI_GP0"}
            if c("PCW_USE_S_AXI_HP0", "0") == "1":
                pins |= {"S_AXI_HP0_ACLK"} if not intf else {"S_AXI_HP0"}
            return pins
        if ip == "zynq_ultra_ps_e":
            pins = {"pl_clk0", "pl_resetn0"} if not intf else set()
            if c("PSU__USE__M_AXI_GP0", "1") == "1":
                pins |= {"maxihpm0_fpd_aclk"} if not intf else {"M_AXI_HPM0_FPD"}
            if c("PSU__USE__M_AXI_GP1", "1") == "1":
                pins |= {"maxihpm1_fpd_aclk"} if not intf else {"M_AXI_HPM1_FPD"}
            if c("PSU__USE__S_AXI_GP2", "0") == "1":
                pins |= {"saxihp0_fpd_aclk"} if not intf else {"S_AXI_HP0_FPD"}
            return pins
        if ip == "proc_sys_reset":
            return (
                set()
                if intf
                else {
                    "slowest_sync_clk",
                    "ext_reset_in",
                    "aux_reset_in",
                    "mb_debug_sys_rst",
                    "dcm_locked",
                    "mb_reset",
                    "bus_struct_reset",
                    "peripheral_reset",
                    "interconnect_aresetn",
                    "peripheral_aresetn",
                }
            )
        if ip == "axi_interconnect":
            si, mi = int(c("NUM_SI", "1")), int(c("NUM_MI", "2"))
            if intf:
                return {f"S{i:02d}_AXI" for i in range(si)} | {f"M{i:02d}_AXI" for i in range(mi)}
            pins = {"ACLK", "ARESETN"}
            for p, n in (("S", si), ("M", mi)):
                pins |= {f"{p}{i:02d}_ACLK" for i in range(n)}
                pins |= {f"{p}{i:02d}_ARESETN" for i in range(n)}
            return pins
        if ip == "smartconnect":
            si, mi = int(c("NUM_SI", "1")), int(c("NUM_MI", "1"))
            if intf:
                return {f"S{i:02d}_AXI" for i in range(si)} | {f"M{i:02d}_AXI" for i in range(mi)}
            return {"aclk", "aresetn"}
        if ip == "axi_dma":
            s2mm = c("c_include_s2mm", "1") == "1"
            if intf:
                pins = {"S_AXI_LITE", "M_AXI_MM2S", "M_AXIS_MM2S"}
                return pins | ({"M_AXI_S2MM", "S_AXIS_S2MM"} if s2mm else set())
            pins = {"s_axi_lite_aclk", "m_axi_mm2s_aclk", "axi_resetn", "mm2s_introut"}
            return pins | ({"m_axi_s2mm_aclk", "s2mm_introut"} if s2mm else set())
        self.fail(f"the stand-in does not know the pins of {ip}")

    def pin(self, path, intf):
        if "/" not in path:
            self.fail(f"[BD 5-148] '{path}' is not <cell>/<pin>")
        cell, name = path.split("/", 1)
        if name == "*":
            return " ".join(f"{cell}/{p}" for p in sorted(self.pins(cell, intf)))
        if name not in self.pins(cell, intf):
            kind = "interface pin" if intf else "pin"
            self.fail(f"[BD 5-233] no {kind} '{name}' on cell '{cell}' ({self.ip_of(cell)})")
        return path

    # ---- project, files, parameters
    def cmd_version(self, a):
        return self.version

    def cmd_exit(self, a):
        self.exit_code = int(a[0]) if a else 0
        raise FakeExit(f"exit {self.exit_code}")

    def cmd_create_project(self, a):
        o, pos = self.opts(a, ("-force",))
        name, directory = pos
        self.project = {"name": name, "dir": directory, "part": o["-part"], "board_part": None}
        Path(directory).mkdir(parents=True, exist_ok=True)

    def cmd_current_project(self, a):
        return "project"

    def cmd_get_param(self, a):
        return ""

    def cmd_set_param(self, a):
        pass

    def cmd_get_board_parts(self, a):
        o, pos = self.opts(a, ("-quiet", "-latest_file_version"))
        return " ".join(p for p in self.board_parts if pos and p == pos[0])

    def cmd_set_property(self, a):
        o, pos = self.opts(a)
        if "-dict" in o:
            items = self.split(o["-dict"])
            objects = pos
        else:
            items, objects = pos[:2], pos[2:]
        if len(items) % 2:
            self.fail(f"set_property: odd -dict {items}")
        for obj in objects:
            for obj1 in self.split(obj):
                for k, v in zip(items[::2], items[1::2], strict=False):
                    self.props.setdefault(obj1, {})[k] = v
                    if obj1 == "project" and k == "board_part":
                        self.project["board_part"] = v

    def cmd_get_property(self, a):
        o, pos = self.opts(a, ("-quiet",))
        key, obj = pos
        if key == "VLNV":
            return obj
        if key == "CONFIG.FREQ_HZ" and obj.split("/")[0] in self.cells:
            cell = obj.split("/")[0]
            ip = self.ip_of(cell)
            if ip == "processing_system7":
                mhz = float(self.config(cell, "PCW_FPGA0_PERIPHERAL_FREQMHZ", "50"))
                return str(round(mhz * 1e6))
            if ip == "zynq_ultra_ps_e":
                mhz = float(self.config(cell, "PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ", "100"))
                return str(round(mhz * 1e6 * 0.99999))  # the PS's dividers: a little off
        if key == "PROGRESS":
            return "100%"
        if key == "STATUS":
            if self.prop(obj, "STATUS"):
                return self.prop(obj, "STATUS")
            return "synth_design Complete!" if obj == "synth_1" else "route_design Complete!"
        if key == "DIRECTORY":
            return str(Path(self.project["dir"]) / f"{self.project['name']}.runs" / obj)
        if key == "SLACK":
            if obj == "path_setup":
                return "-0.734" if self.mode == "slack" else "1.418"
            return "0.021"
        return self.prop(obj, key)

    def cmd_add_files(self, a):
        o, pos = self.opts(a, ("-norecurse",))
        for group in pos:
            for f in self.split(group):
                if not Path(f).is_file():
                    self.fail(f"[filemgmt 56-12] file '{f}' does not exist")
                self.files.append(f)

    def cmd_get_files(self, a):
        o, pos = self.opts(a, ("-quiet", "-all"))
        out = []
        for group in pos:
            for f in self.split(group):
                if f.endswith(".bd"):
                    out.append(str(self.bd_path()))
                elif f in self.files:
                    out.append(f)
                else:
                    self.fail(f"[Vivado 12-180] no file matches '{f}'")
        return " ".join("{%s}" % f for f in out)

    def cmd_update_compile_order(self, a):
        pass

    def cmd_get_filesets(self, a):
        return a[-1]

    # ---- block design
    def bd_path(self):
        p, bd = self.project, self.project["bd"]
        return Path(p["dir"]) / f"{p['name']}.srcs" / "sources_1" / "bd" / bd / f"{bd}.bd"

    def gen_dir(self):
        p, bd = self.project, self.project["bd"]
        return Path(p["dir"]) / f"{p['name']}.gen" / "sources_1" / "bd" / bd

    def cmd_create_bd_design(self, a):
        self.project["bd"] = a[0]
        self.bd_path().parent.mkdir(parents=True, exist_ok=True)
        self.bd_path().write_text("{}")

    def cmd_get_ipdefs(self, a):
        o, pos = self.opts(a, ("-all",))
        m = re.search(r"xilinx\.com:ip:(\w+):\*", o.get("-filter", "") + " ".join(pos))
        if not m:
            self.fail(f"get_ipdefs: no VLNV pattern in {a}")
        return " ".join(f"xilinx.com:ip:{m.group(1)}:{v}" for v in IP_VERSIONS.get(m.group(1), []))

    def cmd_create_bd_cell(self, a):
        o, pos = self.opts(a)
        name = pos[0]
        if name in self.cells:
            self.fail(f"[BD 5-7] cell '{name}' exists")
        if o["-type"] == "ip":
            vendor, lib, ip, ver = o["-vlnv"].split(":")
            if ver not in IP_VERSIONS.get(ip, []):
                self.fail(f"[BD 5-390] IP {o['-vlnv']} is not in the catalog")
            self.cells[name] = {"type": "ip", "vlnv": o["-vlnv"]}
        elif o["-type"] == "module":
            self.shell_ports(o["-reference"])
            self.cells[name] = {"type": "module", "ref": o["-reference"]}
        else:
            self.fail(f"create_bd_cell -type {o['-type']}")
        return name

    def cmd_get_bd_cells(self, a):
        o, pos = self.opts(a, ("-quiet",))
        for c in pos:
            self.ip_of(c)
        return " ".join(pos)

    def cmd_get_bd_pins(self, a):
        return " ".join(self.pin(p, False) for p in self.opts(a, ("-quiet",))[1])

    def cmd_get_bd_intf_pins(self, a):
        return " ".join(self.pin(p, True) for p in self.opts(a, ("-quiet",))[1])

    def cmd_apply_bd_automation(self, a):
        o, pos = self.opts(a)
        self.props.setdefault(pos[0], {})["automation"] = o["-rule"]
        cfg = dict(zip(*[iter(self.split(o["-config"]))] * 2, strict=False))
        self.props[pos[0]]["automation_config"] = cfg

    def cmd_connect_bd_intf_net(self, a):
        o, pos = self.opts(a)
        if len(pos) != 2:
            self.fail(f"connect_bd_intf_net takes two interfaces, got {pos}")
        self.intf_nets.append(tuple(pos))

    def cmd_connect_bd_net(self, a):
        o, pos = self.opts(a)
        self.nets.append(tuple(pos))

    def cmd_get_bd_addr_spaces(self, a):
        cell, space = a[0].split("/")
        if self.ip_of(cell) not in ("processing_system7", "zynq_ultra_ps_e") or space != "Data":
            self.fail(f"no address space {a[0]}")
        return a[0]

    def cmd_get_bd_addr_segs(self, a):
        o, pos = self.opts(a, ("-quiet",))
        cell, intf, seg = pos[0].split("/")
        if intf not in self.pins(cell, True):
            return ""
        return f"{cell}/{intf}/" + ("reg0" if self.ip_of(cell) == "module" else "Reg")

    def cmd_assign_bd_address(self, a):
        o, pos = self.opts(a, ("-force",))
        self.addresses.append(
            {
                "space": o.get("-target_address_space"),
                "offset": o.get("-offset"),
                "range": o.get("-range"),
                "segs": pos,
            }
        )

    def cmd_validate_bd_design(self, a):
        pass

    def cmd_save_bd_design(self, a):
        pass

    def cmd_generate_target(self, a):
        hwh = self.gen_dir() / "hw_handoff" / f"{self.project['bd']}.hwh"
        if self.mode != "nohwh":
            hwh.parent.mkdir(parents=True, exist_ok=True)
            hwh.write_text('<?xml version="1.0"?><EDKSYSTEM/>\n')

    def cmd_make_wrapper(self, a):
        w = self.gen_dir() / "hdl" / f"{self.project['bd']}_wrapper.v"
        w.parent.mkdir(parents=True, exist_ok=True)
        w.write_text(f"module {self.project['bd']}_wrapper(); endmodule\n")
        return str(w)

    # ---- runs and reports
    def cmd_get_runs(self, a):
        if a[0] not in ("synth_1", "impl_1"):
            self.fail(f"no run {a[0]}")
        return a[0]

    def cmd_launch_runs(self, a):
        if self.mode == "synth_error" and a[0] == "synth_1":
            self.props.setdefault("synth_1", {})["STATUS"] = "synth_design ERROR"

    def cmd_wait_on_run(self, a):
        pass

    def cmd_open_run(self, a):
        pass

    def fixture(self, name):
        return (self.fixtures / name).read_text()

    def cmd_report_timing_summary(self, a):
        o, pos = self.opts(a, ("-report_unconstrained",))
        name = "timing_summary_failed.rpt" if self.mode == "slack" else "timing_summary_met.rpt"
        Path(o["-file"]).write_text(self.fixture(name))

    def cmd_report_utilization(self, a):
        o, pos = self.opts(a, ("-hierarchical",))
        if "-hierarchical" in o:
            name = "utilization_hierarchical.rpt"
        else:
            xc7 = self.project["part"].startswith("xc7")
            name = "utilization_xc7.rpt" if xc7 else "utilization_xcup.rpt"
        Path(o["-file"]).write_text(self.fixture(name))

    def cmd_get_timing_paths(self, a):
        o, pos = self.opts(a, ("-setup", "-hold"))
        return "path_hold" if "-hold" in o else "path_setup"

    def cmd_write_bitstream(self, a):
        o, pos = self.opts(a, ("-force",))
        part = self.project["part"].encode()
        Path(pos[0]).write_bytes(b"\x00\x09\x0f\xf0fake bitstream of " + part)

    def cmd_close_project(self, a):
        pass


def main(argv):
    mode = os.environ.get("FAKE_VIVADO_MODE", "ok")
    entry = {"argv": argv, "cwd": os.getcwd(), "mode": mode}
    if "-source" in argv:
        source = argv[argv.index("-source") + 1]
        entry["source"] = source
        entry["source_exists"] = Path(source).is_file()
    record = os.environ.get("FAKE_VIVADO_RECORD")
    version = {"version": "2021.1"}.get(mode, "2023.2")
    if "-version" in argv:
        print(f"Vivado v{version} (64-bit)")
        return 0
    print("****** Vivado v%s (64-bit) [stand-in]" % version, flush=True)
    if mode == "hang":
        import time

        time.sleep(120)
    if mode == "exit1":
        print("ERROR: [Common 17-345] A valid license was not found for feature 'Synthesis'")
        code = 1
        fake = None
    else:
        parts = os.environ.get("FAKE_VIVADO_BOARD_PARTS")
        installed = parts.split(",") if parts is not None else DEFAULT_BOARD_PARTS
        fake = FakeVivado(
            os.getcwd(),
            mode=mode,
            version=version,
            board_parts=installed,
            fixtures=os.environ["FAKE_VIVADO_FIXTURES"],
        )
        tclargs = argv[argv.index("-tclargs") + 1 :] if "-tclargs" in argv else []
        code = fake.run(entry["source"], tclargs)
        entry["files"] = [{"path": f, "exists": Path(f).is_file()} for f in fake.files]
        if mode == "lost_hwh":
            for hwh in Path("out").glob("*.hwh"):
                hwh.unlink()
    sys.stdout.flush()
    entry["exit"] = code
    if record:
        with open(record, "a") as f:
            f.write(json.dumps(entry) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
