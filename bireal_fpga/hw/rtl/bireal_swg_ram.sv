// bireal_swg_ram: simple dual-port memory (one write port, one registered read port with
// enable) for the sliding-window buffers (DEPTH >= 2). STYLE picks the FPGA memory:
// 0 distributed (LUTRAM), 1 block (BRAM), 2 ultra (URAM). The read output holds while rd_en
// is low.
module bireal_swg_ram #(
    parameter int WIDTH = 8,
    parameter int DEPTH = 16,
    parameter int STYLE = 1
) (
    input  logic                      clk,
    input  logic                      wr_en,
    input  logic [$clog2(DEPTH)-1:0]  wr_addr,
    input  logic [WIDTH-1:0]          wr_data,
    input  logic                      rd_en,
    input  logic [$clog2(DEPTH)-1:0]  rd_addr,
    output logic [WIDTH-1:0] rd_data
);
    generate
        if (STYLE == 0) begin : g_dist
            (* ram_style = "distributed" *) logic [WIDTH-1:0] ram [DEPTH];
            always_ff @(posedge clk) begin
                if (wr_en) ram[wr_addr] <= wr_data;
                if (rd_en) rd_data <= ram[rd_addr];
            end
        end else if (STYLE == 2) begin : g_ultra
            (* ram_style = "ultra" *) logic [WIDTH-1:0] ram [DEPTH];
            always_ff @(posedge clk) begin
                if (wr_en) ram[wr_addr] <= wr_data;
                if (rd_en) rd_data <= ram[rd_addr];
            end
        end else begin : g_block
            (* ram_style = "block" *) logic [WIDTH-1:0] ram [DEPTH];
            always_ff @(posedge clk) begin
                if (wr_en) ram[wr_addr] <= wr_data;
                if (rd_en) rd_data <= ram[rd_addr];
            end
        end
    endgenerate
endmodule
