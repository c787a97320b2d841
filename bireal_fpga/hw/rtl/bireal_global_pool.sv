// bireal_global_pool: per-channel sum over PIXELS pixels (global accumulating pool).
// A pixel is FOLDS words of PE channels; the partial sums of one pixel's FOLDS words sit in a
// small memory (read asynchronously, written back in the same cycle). During the last pixel
// of a frame each completed sum goes straight to the registered output instead, so the input
// runs at one word per cycle and the output words overlap with the last pixel.
module bireal_global_pool #(
    parameter int PE = 1,
    parameter int IB = 8,
    parameter bit IS = 1'b1,
    parameter int OB = 16,
    parameter int FOLDS = 1,
    parameter int PIXELS = 1
) (
    input  logic             clk,
    input  logic             rst_n,
    input  logic [PE*IB-1:0] in_data,
    input  logic             in_valid,
    output logic             in_ready,
    output logic [PE*OB-1:0] out_data,
    output logic             out_valid,
    input  logic             out_ready
);
    localparam int FW = FOLDS > 1 ? $clog2(FOLDS) : 1;
    localparam int PW = PIXELS > 1 ? $clog2(PIXELS) : 1;

    logic [FW-1:0] fold;
    logic [PW-1:0] pixel;
    logic first, last, advance, fire;
    logic [PE*OB-1:0] partial, sum;

    assign first = pixel == '0;
    assign last = pixel == PW'(PIXELS - 1);
    assign advance = !out_valid || out_ready;
    assign in_ready = !last || advance;
    assign fire = in_valid && in_ready;

    if (PIXELS > 1) begin : g_acc
        (* ram_style = "distributed" *) logic [PE*OB-1:0] acc[FOLDS];
        assign partial = first ? '0 : acc[fold];
        always_ff @(posedge clk) begin
            if (fire && !last) acc[fold] <= sum;
        end
    end else begin : g_noacc
        assign partial = '0;
    end

    for (genvar i = 0; i < PE; i++) begin : g_lane
        logic [OB-1:0] x;
        assign x = IS ? OB'($signed(in_data[i*IB +: IB])) : OB'(in_data[i*IB +: IB]);
        assign sum[i*OB +: OB] = partial[i*OB +: OB] + x;
    end

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            fold <= '0;
            pixel <= '0;
            out_valid <= 1'b0;
        end else begin
            if (fire) begin
                if (fold == FW'(FOLDS - 1)) begin
                    fold <= '0;
                    pixel <= last ? '0 : pixel + 1'b1;
                end else begin
                    fold <= fold + 1'b1;
                end
            end
            if (advance) out_valid <= fire && last;
        end
    end
    always_ff @(posedge clk) begin
        if (fire && last) out_data <= sum;
    end
endmodule
