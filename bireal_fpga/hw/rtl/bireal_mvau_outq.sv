// bireal_mvau_outq: the output queue of a pipeline that never stalls. The producer reserves a
// slot (`take`) when it starts a result, which may only happen while `space` is high; the
// result arrives some fixed number of cycles later (`wr`). With DEPTH >= the cycles from
// reservation to `out_valid` plus one, the pipeline keeps one result per cycle while the
// consumer is ready, and never drops a result when it is not. `space` depends on registers
// only (no path from out_ready to the producer's input ready).
module bireal_mvau_outq #(
    parameter int WIDTH = 8,
    parameter int DEPTH = 4,
    localparam int AW = DEPTH > 1 ? $clog2(DEPTH) : 1,
    localparam int CW = $clog2(DEPTH + 1)
) (
    input  logic             clk,
    input  logic             rst_n,
    input  logic             take,
    output logic             space,
    input  logic             wr,
    input  logic [WIDTH-1:0] wdata,
    output logic [WIDTH-1:0] out_data,
    output logic             out_valid,
    input  logic             out_ready
);
    (* ram_style = "distributed" *) logic [WIDTH-1:0] mem [DEPTH];
    logic [AW-1:0] wptr, rptr;
    logic [CW-1:0] reserved, count;
    logic pop;
    assign pop = out_valid & out_ready;
    assign space = reserved < CW'(DEPTH);
    assign out_valid = count != '0;
    assign out_data = mem[rptr];
    always_ff @(posedge clk) begin
        if (wr) mem[wptr] <= wdata;
        if (!rst_n) begin
            wptr <= '0;
            rptr <= '0;
            reserved <= '0;
            count <= '0;
        end else begin
            if (wr) wptr <= (wptr == AW'(DEPTH - 1)) ? '0 : wptr + 1'b1;
            if (pop) rptr <= (rptr == AW'(DEPTH - 1)) ? '0 : rptr + 1'b1;
            reserved <= reserved + CW'(take) - CW'(pop);
            count <= count + CW'(wr) - CW'(pop);
        end
    end
endmodule
