// bireal_duplicate: one AXI stream in, N identical streams out (a fork).
// A word leaves the input once every output has taken it; outputs that took it early wait.
module bireal_duplicate #(
    parameter int WIDTH = 8,
    parameter int N = 2
) (
    input  logic                  clk,
    input  logic                  rst_n,
    input  logic [WIDTH-1:0]      in_data,
    input  logic                  in_valid,
    output logic                  in_ready,
    output logic [N*WIDTH-1:0]    out_data,
    output logic [N-1:0]          out_valid,
    input  logic [N-1:0]          out_ready
);
    logic [N-1:0] taken;  // outputs that already took the current input word
    logic [N-1:0] done;
    assign done = taken | (out_valid & out_ready);
    assign in_ready = &done;
    assign out_valid = {N{in_valid}} & ~taken;
    assign out_data = {N{in_data}};
    always_ff @(posedge clk) begin
        if (!rst_n) taken <= '0;
        else if (in_valid) taken <= in_ready ? '0 : done;
    end
endmodule
