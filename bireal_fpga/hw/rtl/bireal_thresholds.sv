// bireal_thresholds: PE parallel multi-threshold units as a binary search.
//
// Every channel has N thresholds t[0] <= ... <= t[N-1] (sorted, clamped to the input range,
// padded to 2^K - 1 entries with a value above every input); the output is
// ACT_VAL + #{i : x >= t[i]}. The count is decided one bit per search stage, MSB first:
// stage s (0..K-1) tries c' = c + 2^(K-1-s) and keeps it when x >= t[c' - 1]. Stage s only
// ever probes the 2^s thresholds with index prefix*2^(K-s) + 2^(K-1-s) - 1 (prefix: the s
// count bits decided so far), at address nf*2^s + prefix of its own small table.
//
// The K stages form G = ceil(K / S) groups of S consecutive stages. A group is one search
// engine per PE with one memory (its stages' tables one after the other): it spends one
// cycle per stage, reading the next stage's threshold with the address the current
// comparison gives (registered memory read, one read port). So a group takes a new input
// every S cycles: S = 1 is a fully pipelined search (one input per cycle); a producer that
// delivers at most one input per S cycles (an MVAU with S <= MW/SIMD) can use fewer, larger
// engines (fewer comparators, registers and memories). The latency is K + 1 cycles always.
//
// Memory images: group g of PE p "<PREFIX>_gGG_pPPPP.mem" (two / four decimal digits), or
// "<PREFIX>_gGG.mem" for every PE when SHARED (all channels have the same thresholds).
//
// No handshake: in_valid marks PE inputs (registered by the caller; at most one per S
// cycles); out_valid and out_y follow exactly K + 1 cycles later.
module bireal_thresholds #(
    parameter int PE = 1,
    parameter int NF = 1,          // channel folds of the input (in_nf counts 0..NF-1)
    parameter int TNF = 1,         // channel folds stored (NF, or 1 when SHARED)
    parameter int SHARED = 0,
    parameter int K = 1,           // search stages: ceil(log2(N + 1))
    parameter int S = 1,           // stages per group (engine)
    parameter int A = 8,           // signed width of inputs and thresholds
    parameter int OUT_BITS = 8,
    parameter int ACT_VAL = 0,
    parameter bit [63:0] STYLES = '0,  // 2 bits per group memory: see bireal_mvau_rom
    parameter PREFIX = "thr",
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
    function automatic [15:0] dec2(input int v);
        return {8'(48 + v / 10 % 10), 8'(48 + v % 10)};
    endfunction
    function automatic [31:0] dec4(input int v);
        return {8'(48 + v / 1000 % 10), 8'(48 + v / 100 % 10), 8'(48 + v / 10 % 10),
                8'(48 + v % 10)};
    endfunction

    localparam int G = (K + S - 1) / S;

    // what enters group g (g = G: the search result): valid, channel fold, and per PE the
    // input and the count bits decided so far
    logic             gv [G+1];
    logic [NFW-1:0]   gnf [G+1];
    logic [A-1:0]     gx [G+1][PE];
    logic [K-1:0]     gc [G+1][PE];
    assign gv[0] = in_valid;
    assign gnf[0] = in_nf;
    for (genvar p = 0; p < PE; p++) begin : g_in
        assign gx[0][p] = in_x[p*A +: A];
        assign gc[0][p] = '0;
    end

    for (genvar g = 0; g < G; g++) begin : g_grp
        localparam int K0 = g * S;                    // first stage of the group
        localparam int SG = K - K0 < S ? K - K0 : S;  // stages in the group
        localparam int D = TNF * ((1 << (K0 + SG)) - (1 << K0));
        localparam int AW = D > 1 ? $clog2(D) : 1;
        localparam int STW = SG > 1 ? $clog2(SG) : 1;

        // table address of stage K0 + j for channel fold nf and count bits c
        function automatic [AW-1:0] addr_of(input int j, input [NFW-1:0] nf,
                                            input [K-1:0] c);
            int s;
            s = K0 + j;
            return AW'(TNF * ((1 << s) - (1 << K0)) + (TNF > 1 ? int'(nf) << s : 0)
                       + (int'(c) >> (K - s)));
        endfunction

        // the engine: the item in flight and the stage it compares this cycle (j = step)
        logic busy, last, rd;
        logic [STW-1:0] step;
        logic [NFW-1:0] nf;
        int j;
        assign j = SG > 1 ? int'(step) : 0;
        assign last = busy && j == SG - 1;
        assign rd = gv[g] | (busy & ~last);  // read the table of the next stage
        always_ff @(posedge clk) begin
            if (!rst_n) begin
                busy <= 1'b0;
            end else if (gv[g]) begin
                busy <= 1'b1;
            end else if (last) begin
                busy <= 1'b0;
            end
            if (gv[g]) begin
                step <= '0;
                nf <= gnf[g];
            end else if (busy && SG > 1) begin
                step <= step + 1'b1;
            end
        end
        assign gv[g+1] = last;
        assign gnf[g+1] = nf;

        for (genvar p = 0; p < PE; p++) begin : g_pe
            logic [A-1:0] x, t;
            logic [K-1:0] c, cp;
            logic [AW-1:0] addr;
            always_ff @(posedge clk) begin
                if (gv[g]) begin
                    x <= gx[g][p];
                    c <= gc[g][p];
                end else if (busy) begin
                    c <= cp;
                end
            end
            assign cp = c | (K'($signed(x) >= $signed(t)) << (K - 1 - K0 - j));
            assign gx[g+1][p] = x;
            assign gc[g+1][p] = cp;
            if (SG > 1) begin : g_seq
                assign addr = gv[g] ? addr_of(0, gnf[g], gc[g][p]) : addr_of(j + 1, nf, cp);
            end else begin : g_one
                assign addr = addr_of(0, gnf[g], gc[g][p]);
            end
            // (two branches: the names differ in length, and a file name must not be padded)
            if (SHARED) begin : g_shared
                bireal_mvau_rom #(
                    .WIDTH(A), .DEPTH(D), .STYLE(int'(STYLES[2*g +: 2])),
                    .FILE({PREFIX, "_g", dec2(g), ".mem"})
                ) rom (.clk(clk), .en(rd), .addr(addr), .data(t));
            end else begin : g_own
                bireal_mvau_rom #(
                    .WIDTH(A), .DEPTH(D), .STYLE(int'(STYLES[2*g +: 2])),
                    .FILE({PREFIX, "_g", dec2(g), "_p", dec4(p), ".mem"})
                ) rom (.clk(clk), .en(rd), .addr(addr), .data(t));
            end
        end
    end

    // output: ACT_VAL + count
    always_ff @(posedge clk) begin
        if (!rst_n) out_valid <= 1'b0;
        else out_valid <= gv[G];
        if (gv[G]) begin
            for (int p = 0; p < PE; p++) begin
                out_y[p*OUT_BITS +: OUT_BITS] <= OUT_BITS'(
                    $signed({1'b0, gc[G][p]}) + 33'(signed'(ACT_VAL)));
            end
        end
    end
endmodule
