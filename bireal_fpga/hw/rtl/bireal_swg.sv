// bireal_swg: FINN's ConvolutionInputGenerator (sliding window generator), in FINN's python
// (im2col) element order: per output pixel the kernel rows, kernel columns, then channels.
// IMPL picks the implementation:
//   0  bireal_swg_buf  - one SIMD word per cycle from a circular buffer (parallel_window=0)
//   1  bireal_swg_lb   - one whole window per cycle from line buffers (parallel_window=1)
//   2  bireal_swg_pick - 1x1 kernels: keeps the pixels on the stride grid, no buffer
module bireal_swg #(
    parameter int IMPL = 0,
    parameter int IN_WIDTH = 8,
    parameter int OUT_WIDTH = 8,
    parameter int H = 4,
    parameter int W = 4,
    parameter int CF = 1,
    parameter int KH = 3,
    parameter int KW = 3,
    parameter int OH = 2,
    parameter int OW = 2,
    parameter logic [W-1:0] XMASK = '1,
    parameter logic [H-1:0] YMASK = '1,
    parameter int DEPTH = 16,
    parameter int STYLE = 1,
    parameter int P = 16,
    parameter int INC_KH = 1,
    parameter int INC_W = 1,
    parameter int INC_H = 1,
    parameter int INC_F = 1,
    parameter int INC_KH_A = 1,
    parameter int INC_W_A = 1,
    parameter int INC_H_A = 1,
    parameter int INC_F_A = 1
) (
    input  logic                 clk,
    input  logic                 rst_n,
    input  logic [IN_WIDTH-1:0]  in_data,
    input  logic                 in_valid,
    output logic                 in_ready,
    output logic [OUT_WIDTH-1:0] out_data,
    output logic                 out_valid,
    input  logic                 out_ready
);
    generate
        if (IMPL == 1) begin : g_lb
            bireal_swg_lb #(
                .PW(IN_WIDTH), .H(H), .W(W), .KH(KH), .KW(KW),
                .XMASK(XMASK), .YMASK(YMASK), .STYLE(STYLE)
            ) core (.*);
        end else if (IMPL == 2) begin : g_pick
            bireal_swg_pick #(
                .WIDTH(IN_WIDTH), .H(H), .W(W), .CF(CF), .XMASK(XMASK), .YMASK(YMASK)
            ) core (.*);
        end else begin : g_buf
            bireal_swg_buf #(
                .WIDTH(IN_WIDTH), .DEPTH(DEPTH), .STYLE(STYLE), .P(P), .CF(CF),
                .KH(KH), .KW(KW), .OH(OH), .OW(OW),
                .INC_KH(INC_KH), .INC_W(INC_W), .INC_H(INC_H), .INC_F(INC_F),
                .INC_KH_A(INC_KH_A), .INC_W_A(INC_W_A), .INC_H_A(INC_H_A), .INC_F_A(INC_F_A)
            ) core (.*);
        end
    endgenerate
endmodule
