// bireal_affine_act: PE parallel threshold activations computed as exact affine maps.
//
// A channel whose thresholds t[0..N-1] are the steps of clamp(floor((M x + C) / 2^SHIFT), 0, N)
// (proved exact over the whole accumulator range by bireal_fpga/arch/affine.py) gets
// y = ACT_VAL + clamp((M x + C) >>> SHIFT, 0, N): one multiply-add per lane instead of a table
// and a binary search. M (unsigned, M_BITS) and C (signed, C_BITS) per channel come from a
// ROM with one word per channel fold: lane p of word nf holds channel nf*PE + p as {C, M}.
//
// Same interface as bireal_thresholds, fixed latency 3: in_valid -> (ROM read, x registered)
// -> product -> sum, shift, clamp -> out_valid.
module bireal_affine_act #(
    parameter int PE = 1,
    parameter int NF = 1,
    parameter int A = 16,          // signed input width
    parameter int M_BITS = 16,     // unsigned multipliers
    parameter int C_BITS = 32,     // signed offsets
    parameter int SHIFT = 0,
    parameter int STEPS = 255,     // N
    parameter int OUT_BITS = 8,
    parameter int ACT_VAL = 0,
    parameter int STYLE = 0,       // ROM: 0 distributed, 1 block, 2 ultra
    parameter FILE = "affine.mem",
    localparam int NFW = NF > 1 ? $clog2(NF) : 1
) (
    input  logic                   clk,
    input  logic                   rst_n,
    input  logic                   in_valid,
    input  logic [NFW-1:0]         in_nf,
    input  logic [PE*A-1:0]        in_x,
    output logic                   out_valid,
    output logic [PE*OUT_BITS-1:0] out_y
);
    localparam int EW = M_BITS + C_BITS;           // one channel's {C, M}
    localparam int PW = A + M_BITS + 1;            // signed product width
    localparam int SW = (PW > C_BITS ? PW : C_BITS) + 1;  // signed sum width

    logic [PE*EW-1:0] coef;
    bireal_mvau_rom #(.WIDTH(PE * EW), .DEPTH(NF), .STYLE(STYLE), .FILE(FILE)) rom (
        .clk(clk), .en(in_valid), .addr(in_nf), .data(coef)
    );

    logic v1, v2;
    logic [PE*A-1:0] x1;
    always_ff @(posedge clk) begin
        if (!rst_n) begin
            v1 <= 1'b0;
            v2 <= 1'b0;
            out_valid <= 1'b0;
        end else begin
            v1 <= in_valid;
            v2 <= v1;
            out_valid <= v2;
        end
        if (in_valid) x1 <= in_x;
    end

    for (genvar p = 0; p < PE; p++) begin : g_pe
        logic [M_BITS-1:0] m1;
        logic signed [C_BITS-1:0] c1, c2;
        logic signed [PW-1:0] prod2;
        assign m1 = coef[p*EW +: M_BITS];
        assign c1 = $signed(coef[p*EW + M_BITS +: C_BITS]);
        always_ff @(posedge clk) begin
            if (v1) begin
                prod2 <= $signed({1'b0, m1}) * $signed(x1[p*A +: A]);
                c2 <= c1;
            end
        end
        logic signed [SW-1:0] sum;
        logic signed [SW-1:0] level;
        assign sum = SW'(prod2) + SW'(c2);
        assign level = sum >>> SHIFT;
        always_ff @(posedge clk) begin
            if (v2) begin
                if (level < 0)
                    out_y[p*OUT_BITS +: OUT_BITS] <= OUT_BITS'(ACT_VAL);
                else if (level > STEPS)
                    out_y[p*OUT_BITS +: OUT_BITS] <= OUT_BITS'(ACT_VAL + STEPS);
                else
                    out_y[p*OUT_BITS +: OUT_BITS] <= OUT_BITS'(ACT_VAL + level);
            end
        end
    end
endmodule
