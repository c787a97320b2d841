// bireal_mvau_ram: a simple dual-port RAM (one write port, one registered read port).
// STYLE: 0 = distributed (LUT), 1 = block (BRAM), 2 = ultra (URAM).
module bireal_mvau_ram #(
    parameter int WIDTH = 8,
    parameter int DEPTH = 2,
    parameter int STYLE = 0,
    localparam int AW = DEPTH > 1 ? $clog2(DEPTH) : 1
) (
    input  logic             clk,
    input  logic             we,
    input  logic [AW-1:0]    waddr,
    input  logic [WIDTH-1:0] wdata,
    input  logic [AW-1:0]    raddr,
    output logic [WIDTH-1:0] rdata
);
    if (STYLE == 2) begin : g_ultra
        (* ram_style = "ultra" *) logic [WIDTH-1:0] mem [DEPTH];
        always_ff @(posedge clk) begin
            if (we) mem[waddr] <= wdata;
            rdata <= mem[raddr];
        end
    end else if (STYLE == 1) begin : g_block
        (* ram_style = "block" *) logic [WIDTH-1:0] mem [DEPTH];
        always_ff @(posedge clk) begin
            if (we) mem[waddr] <= wdata;
            rdata <= mem[raddr];
        end
    end else begin : g_dist
        (* ram_style = "distributed" *) logic [WIDTH-1:0] mem [DEPTH];
        always_ff @(posedge clk) begin
            if (we) mem[waddr] <= wdata;
            rdata <= mem[raddr];
        end
    end
endmodule
