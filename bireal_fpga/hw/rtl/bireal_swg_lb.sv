// bireal_swg_lb: sliding-window generator emitting a whole KH x KW window per output word
// (FINN's parallel_window), one input pixel per cycle.
//
// KH-1 line buffers (one memory, KH-1 pixels wide, W deep) hold the column above the incoming
// pixel; the column (oldest row first) shifts into a KH x KW window register. A pixel at
// (y, x) completes a window when XMASK[x] and YMASK[y] are set (the window's bottom-right
// corner, on the stride grid, inside the output). Output word: pixel (kh, kw) at bits
// [(kh*KW + kw)*PW +: PW], i.e. FINN's (kh, kw, channel) order. Needs W >= 2 (a 1-wide image
// is passed transposed). Two stages: read the column, then shift and write it back.
module bireal_swg_lb #(
    parameter int PW = 8,         // pixel width: channels * bits
    parameter int H = 4,
    parameter int W = 4,
    parameter int KH = 3,
    parameter int KW = 3,
    parameter logic [W-1:0] XMASK = '1,
    parameter logic [H-1:0] YMASK = '1,
    parameter int STYLE = 0       // line buffer memory: 0 distributed, 1 block, 2 ultra
) (
    input  logic              clk,
    input  logic              rst_n,
    input  logic [PW-1:0]     in_data,
    input  logic              in_valid,
    output logic              in_ready,
    output logic [KH*KW*PW-1:0] out_data,
    output logic              out_valid,
    input  logic              out_ready
);
    localparam int XB = W > 1 ? $clog2(W) : 1;
    localparam int YB = H > 1 ? $clog2(H) : 1;
    localparam int LBW = KH > 1 ? (KH - 1) * PW : 1;

    logic adv;
    assign adv = !out_valid || out_ready;
    assign in_ready = adv;

    logic [XB-1:0] x, s_x;
    logic [YB-1:0] y;
    logic s_valid, s_emit;
    logic [PW-1:0] s_pix;
    logic [PW-1:0] win [KH][KW];
    logic [PW-1:0] col [KH];

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            x <= '0; y <= '0; s_valid <= 1'b0; s_emit <= 1'b0; out_valid <= 1'b0;
        end else if (adv) begin
            s_valid <= in_valid;
            if (in_valid) begin
                s_pix <= in_data;
                s_x <= x;
                s_emit <= XMASK[x] && YMASK[y];
                if (x == XB'(W - 1)) begin
                    x <= '0;
                    y <= (y == YB'(H - 1)) ? '0 : y + 1'b1;
                end else begin
                    x <= x + 1'b1;
                end
            end
            out_valid <= s_valid && s_emit;
        end
    end

    always_ff @(posedge clk) begin
        if (adv && s_valid) begin
            for (int kh = 0; kh < KH; kh++) begin
                for (int kw = 0; kw < KW - 1; kw++) win[kh][kw] <= win[kh][kw + 1];
                win[kh][KW - 1] <= col[kh];
            end
        end
    end

    generate
        for (genvar kh = 0; kh < KH; kh++) begin : g_out
            for (genvar kw = 0; kw < KW; kw++) begin : g_px
                assign out_data[(kh * KW + kw) * PW +: PW] = win[kh][kw];
            end
        end
        if (KH > 1) begin : g_lb
            logic [LBW-1:0] lb_rd, lb_wr;
            // lb_rd[i*PW +: PW] = pixel (y-1-i, x); the column is oldest row first
            for (genvar kh = 0; kh < KH - 1; kh++) begin : g_col
                assign col[kh] = lb_rd[(KH - 2 - kh) * PW +: PW];
            end
            if (KH > 2) begin : g_shift
                assign lb_wr = {lb_rd[(KH - 2) * PW - 1:0], s_pix};
            end else begin : g_one
                assign lb_wr = s_pix;
            end
            bireal_swg_ram #(.WIDTH(LBW), .DEPTH(W), .STYLE(STYLE)) lines (
                .clk(clk),
                .wr_en(adv && s_valid), .wr_addr(s_x), .wr_data(lb_wr),
                .rd_en(adv && in_valid), .rd_addr(x), .rd_data(lb_rd)
            );
        end
        assign col[KH - 1] = s_pix;
    endgenerate
endmodule
