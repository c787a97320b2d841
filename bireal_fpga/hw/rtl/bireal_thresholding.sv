// bireal_thresholding: a stream of PE-channel words through multi-threshold activations
// (FINN's Thresholding): out = ACT_VAL + #{i : x >= t[c][i]} for channel c of the element.
// Word w of a vector holds channels (w mod NF)*PE .. +PE-1.
// UNIFORM = 1: every channel has the thresholds T0M1+1, T0M1+2, ..., T0M1+N, so the count is
// clamp(x - T0M1, 0, N): two subtractions and a clamp, no memory. AFFINE = 1: the thresholds
// are the steps of an exact affine map, bireal_affine_act (one multiply-add per lane, the
// MVAU's). Otherwise bireal_thresholds.
// Back-pressure: the datapath never stalls; an input word is taken only with a free slot of
// the output queue reserved for its result.
module bireal_thresholding #(
    parameter int PE = 1,
    parameter int NF = 1,
    parameter int IN_BITS = 8,
    parameter int IN_SIGNED = 1,
    parameter int A = 9,            // signed working width
    parameter int OUT_BITS = 8,
    parameter int ACT_VAL = 0,
    parameter int UNIFORM = 0,
    parameter longint T0M1 = 0,     // UNIFORM: first threshold - 1
    parameter int N = 1,            // UNIFORM: number of thresholds
    parameter int K = 1,
    parameter int TNF = 1,
    parameter int SHARED = 0,
    parameter bit [63:0] STYLES = '0,
    parameter THR_PREFIX = "thr",
    // AFFINE = 1: the thresholds as an exact affine map (bireal_affine_act, latency 3)
    parameter int AFFINE = 0,
    parameter int A_M_BITS = 16,
    parameter int A_C_BITS = 32,
    parameter int A_SHIFT = 0,
    parameter int A_STEPS = 255,
    parameter int A_STYLE = 0,
    parameter AFFINE_FILE = "affine.mem"
) (
    input  logic                   clk,
    input  logic                   rst_n,
    input  logic [PE*IN_BITS-1:0]  in_data,
    input  logic                   in_valid,
    output logic                   in_ready,
    output logic [PE*OUT_BITS-1:0] out_data,
    output logic                   out_valid,
    input  logic                   out_ready
);
    localparam int NFW = NF > 1 ? $clog2(NF) : 1;
    localparam int LAT = 2 + (UNIFORM ? 1 : AFFINE ? 3 : K + 1);
    localparam int QDEPTH = LAT + 1;

    logic space, go;
    logic [NFW-1:0] nf;
    assign in_ready = space;
    assign go = in_valid & space;
    always_ff @(posedge clk) begin
        if (!rst_n) nf <= '0;
        else if (go) nf <= (nf == NFW'(NF - 1)) ? '0 : nf + 1'b1;
    end

    // stage 0: the input word, each element widened to A signed bits
    logic v0;
    logic [NFW-1:0] nf0;
    logic [PE*A-1:0] x0;
    always_ff @(posedge clk) begin
        if (!rst_n) v0 <= 1'b0;
        else v0 <= go;
        if (go) begin
            nf0 <= nf;
            for (int p = 0; p < PE; p++) begin
                x0[p*A +: A] <= IN_SIGNED ? A'($signed(in_data[p*IN_BITS +: IN_BITS]))
                                          : A'({1'b0, in_data[p*IN_BITS +: IN_BITS]});
            end
        end
    end

    logic qwr;
    logic [PE*OUT_BITS-1:0] qdata;
    if (UNIFORM) begin : g_uniform
        always_ff @(posedge clk) begin
            if (!rst_n) qwr <= 1'b0;
            else qwr <= v0;
            if (v0) for (int p = 0; p < PE; p++) begin
                logic signed [A-1:0] d, c;
                d = $signed(x0[p*A +: A]) - $signed(A'(T0M1));
                c = d < 0 ? '0 : (d > $signed(A'(N)) ? A'(N) : d);
                qdata[p*OUT_BITS +: OUT_BITS] <= OUT_BITS'(c) + OUT_BITS'(ACT_VAL);
            end
        end
    end else if (AFFINE) begin : g_affine
        bireal_affine_act #(
            .PE(PE), .NF(NF), .A(A), .M_BITS(A_M_BITS), .C_BITS(A_C_BITS), .SHIFT(A_SHIFT),
            .STEPS(A_STEPS), .OUT_BITS(OUT_BITS), .ACT_VAL(ACT_VAL), .STYLE(A_STYLE),
            .FILE(AFFINE_FILE)
        ) act (
            .clk(clk), .rst_n(rst_n), .in_valid(v0), .in_nf(nf0), .in_x(x0),
            .out_valid(qwr), .out_y(qdata)
        );
    end else begin : g_search
        bireal_thresholds #(
            .PE(PE), .NF(NF), .TNF(TNF), .SHARED(SHARED), .K(K), .S(1), .A(A),
            .OUT_BITS(OUT_BITS),
            .ACT_VAL(ACT_VAL), .STYLES(STYLES), .PREFIX(THR_PREFIX)
        ) thr (
            .clk(clk), .rst_n(rst_n), .in_valid(v0), .in_nf(nf0), .in_x(x0),
            .out_valid(qwr), .out_y(qdata)
        );
    end
    bireal_mvau_outq #(.WIDTH(PE * OUT_BITS), .DEPTH(QDEPTH)) q (
        .clk(clk), .rst_n(rst_n), .take(go), .space(space), .wr(qwr), .wdata(qdata),
        .out_data(out_data), .out_valid(out_valid), .out_ready(out_ready)
    );
endmodule
