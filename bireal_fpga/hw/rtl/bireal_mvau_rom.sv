// bireal_mvau_rom: a read-only memory loaded from a $readmemh image, registered read with
// enable (`data` takes mem[addr] at a clock edge where `en` is high). STYLE picks the FPGA
// resource: 0 = distributed (LUT ROM), 1 = block (BRAM), 2 = ultra (URAM).
// Vivado reads rom_style for a ROM. Yosys (the resource estimate) maps no ROM to LUT RAM, so
// the LUT ROM also carries ram_style = "logic", yosys's name for it (Vivado ignores that value).
module bireal_mvau_rom #(
    parameter int WIDTH = 8,
    parameter int DEPTH = 2,
    parameter int STYLE = 0,
    parameter FILE = "rom.mem",
    localparam int AW = DEPTH > 1 ? $clog2(DEPTH) : 1
) (
    input  logic             clk,
    input  logic             en,
    input  logic [AW-1:0]    addr,
    output logic [WIDTH-1:0] data
);
    if (STYLE == 2) begin : g_ultra
        (* rom_style = "ultra", ram_style = "ultra" *) logic [WIDTH-1:0] mem [DEPTH];
        initial $readmemh(FILE, mem);
        always_ff @(posedge clk) if (en) data <= mem[addr];
    end else if (STYLE == 1) begin : g_block
        (* rom_style = "block", ram_style = "block" *) logic [WIDTH-1:0] mem [DEPTH];
        initial $readmemh(FILE, mem);
        always_ff @(posedge clk) if (en) data <= mem[addr];
    end else begin : g_dist
        (* rom_style = "distributed", ram_style = "logic" *) logic [WIDTH-1:0] mem [DEPTH];
        initial $readmemh(FILE, mem);
        always_ff @(posedge clk) if (en) data <= mem[addr];
    end
endmodule
