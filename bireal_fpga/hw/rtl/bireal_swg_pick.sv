// bireal_swg_pick: the 1x1-kernel sliding window: passes the CF words of every pixel on the
// stride grid inside the output (XMASK[x] and YMASK[y]) and drops the others. No buffer.
module bireal_swg_pick #(
    parameter int WIDTH = 8,
    parameter int H = 4,
    parameter int W = 4,
    parameter int CF = 1,
    parameter logic [W-1:0] XMASK = '1,
    parameter logic [H-1:0] YMASK = '1
) (
    input  logic             clk,
    input  logic             rst_n,
    input  logic [WIDTH-1:0] in_data,
    input  logic             in_valid,
    output logic             in_ready,
    output logic [WIDTH-1:0] out_data,
    output logic             out_valid,
    input  logic             out_ready
);
    localparam int XB = W > 1 ? $clog2(W) : 1;
    localparam int YB = H > 1 ? $clog2(H) : 1;
    localparam int CB = CF > 1 ? $clog2(CF) : 1;

    logic [XB-1:0] x;
    logic [YB-1:0] y;
    logic [CB-1:0] c;
    logic keep;
    assign keep = XMASK[x] && YMASK[y];
    assign in_ready = !keep || !out_valid || out_ready;

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            x <= '0; y <= '0; c <= '0; out_valid <= 1'b0;
        end else begin
            if (out_ready) out_valid <= 1'b0;
            if (in_valid && in_ready) begin
                if (keep) begin
                    out_valid <= 1'b1;
                    out_data <= in_data;
                end
                if (c != CB'(CF - 1)) begin
                    c <= c + 1'b1;
                end else begin
                    c <= '0;
                    if (x != XB'(W - 1)) begin
                        x <= x + 1'b1;
                    end else begin
                        x <= '0;
                        y <= (y == YB'(H - 1)) ? '0 : y + 1'b1;
                    end
                end
            end
        end
    end
endmodule
