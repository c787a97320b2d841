// bireal_fmpadding: FINN's FMPadding: surrounds an H x W image (CF words of SIMD channels per
// pixel) with zero words. Walks the padded output (OH x OW pixels): a pixel inside the image
// (ROWMASK[y] and COLMASK[x]) forwards the next input word, a padding pixel emits zeros.
// One output word per cycle.
module bireal_fmpadding #(
    parameter int WIDTH = 8,
    parameter int OH = 4,
    parameter int OW = 4,
    parameter int CF = 1,
    parameter logic [OW-1:0] COLMASK = '1,
    parameter logic [OH-1:0] ROWMASK = '1
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
    localparam int XB = OW > 1 ? $clog2(OW) : 1;
    localparam int YB = OH > 1 ? $clog2(OH) : 1;
    localparam int CB = CF > 1 ? $clog2(CF) : 1;

    logic [XB-1:0] x;
    logic [YB-1:0] y;
    logic [CB-1:0] c;
    logic in_img, adv, step;
    assign in_img = COLMASK[x] && ROWMASK[y];
    assign adv = !out_valid || out_ready;
    assign in_ready = adv && in_img;
    assign step = adv && (!in_img || in_valid);

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            x <= '0; y <= '0; c <= '0; out_valid <= 1'b0;
        end else begin
            if (adv) out_valid <= step;
            if (step) begin
                out_data <= in_img ? in_data : '0;
                if (c != CB'(CF - 1)) begin
                    c <= c + 1'b1;
                end else begin
                    c <= '0;
                    if (x != XB'(OW - 1)) begin
                        x <= x + 1'b1;
                    end else begin
                        x <= '0;
                        y <= (y == YB'(OH - 1)) ? '0 : y + 1'b1;
                    end
                end
            end
        end
    end
endmodule
