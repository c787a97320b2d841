// bireal_mvau: matrix-vector unit with optional multi-threshold activation (FINN's MVAU).
//
// out[c] = f(sum_i x[i] * W[i][c]) for each input vector x of MW elements, MH channels c.
// BINARY = 1: x and W are bits and the sum is the number of matching bits (XNOR popcount);
// BINARY = 0: signed / unsigned integers times signed integer weights.
// NO_ACT = 1: f is the identity (the accumulator, sign-extended to OUT_BITS); otherwise f is
// the threshold activation of bireal_thresholds (ACT_VAL + number of thresholds <= sum).
//
// Folding: an input word holds SIMD elements (SF = MW / SIMD words per vector), an output word
// PE channels (NF = MH / PE words per vector; word nf holds channels nf*PE .. nf*PE + PE - 1).
// One step (neuron fold nf, synapse fold sf) per cycle, nf outer: the words of a vector are
// taken from the stream during nf = 0 and replayed from a buffer for nf > 0, so a vector takes
// SF * NF cycles. Weights: one memory word per step (address nf*SF + sf), PE lanes of SIMD
// weights (lane p, element s in bits (p*SIMD + s)*W_BITS). The datapath never stalls: a step
// that completes a result reserves a slot of the output queue first (credits), so back-pressure
// only holds the issue stage.
//
// Pipeline: issue -> weight/input read -> dot product -> accumulate -> [thresholds] -> queue.
//
// PACK = 1 (integer mode): lane pairs (2q, 2q+1) share one multiplier per element, two
// products in one DSP (the decision and the exactness argument: bireal_fpga/arch/dsp.py).
//
// W_LOAD = 1: the weights are not constants but loaded at run time (UltraRAM cannot be
// initialized by the bitstream) from the weight bus, a 64-bit stream broadcast to every such
// layer: beats 0 .. WGT_TOTAL-1 form one load of all of them, this layer's words are the beats
// WGT_BASE .. WGT_BASE + WD*WB - 1 (WB = ceil(WW / 64) beats per word, least significant beat
// first, words in address order); after the last beat the count starts over (a reload). The
// layer takes no input before its last word is written, and again from the next reload's first.
module bireal_mvau #(
    parameter int MW = 8,
    parameter int MH = 8,
    parameter int SIMD = 1,
    parameter int PE = 1,
    parameter int BINARY = 0,
    parameter int IN_BITS = 8,
    parameter int IN_SIGNED = 0,
    parameter int W_BITS = 8,       // weights stored as signed W_BITS integers (BINARY: 1 bit)
    parameter int PACK = 0,         // two lanes per multiplier (see PACK below)
    parameter int PACK_S = 17,      // ... the low product's field
    parameter int ACC_BITS = 16,    // signed accumulator width
    parameter int NO_ACT = 0,
    parameter int OUT_BITS = 8,
    // thresholds (NO_ACT = 0): see bireal_thresholds
    parameter int T_K = 1,
    parameter int T_S = 1,          // search stages per engine (<= SF: one result per SF cycles)
    parameter int T_BITS = 17,      // signed compare width (>= ACC_BITS)
    parameter int T_NF = 1,
    parameter int T_SHARED = 0,
    parameter int ACT_VAL = 0,
    parameter bit [63:0] T_STYLES = '0,
    parameter THR_PREFIX = "thr",
    // or (AFFINE = 1) the thresholds as an exact affine map: see bireal_affine_act
    parameter int AFFINE = 0,
    parameter int A_SHIFT = 0,
    parameter int A_M_BITS = 1,
    parameter int A_C_BITS = 1,
    parameter int A_STEPS = 1,
    parameter int A_STYLE = 0,
    parameter AFFINE_FILE = "affine.mem",
    // memories: 0 distributed, 1 block, 2 ultra
    parameter int W_STYLE = 0,
    parameter int BUF_STYLE = 0,
    parameter WEIGHT_FILE = "weights.mem",
    parameter int W_LOAD = 0,
    parameter longint WGT_BASE = 0,
    parameter longint WGT_TOTAL = 1
) (
    input  logic                   clk,
    input  logic                   rst_n,
    input  logic [63:0]            wl_data,   // weight bus (W_LOAD = 1), always accepted
    input  logic                   wl_valid,
    input  logic [SIMD*IN_BITS-1:0] in_data,
    input  logic                   in_valid,
    output logic                   in_ready,
    output logic [PE*OUT_BITS-1:0] out_data,
    output logic                   out_valid,
    input  logic                   out_ready
);
    localparam int SF = MW / SIMD;
    localparam int NF = MH / PE;
    localparam int SFW = SF > 1 ? $clog2(SF) : 1;
    localparam int NFW = NF > 1 ? $clog2(NF) : 1;
    localparam int WD = SF * NF;
    localparam int WAW = WD > 1 ? $clog2(WD) : 1;
    localparam int XW = SIMD * IN_BITS;
    localparam int WW = PE * SIMD * W_BITS;
    // cycles from issuing a result's last step to its word leaving the queue (valid)
    localparam int LAT = 4 + (NO_ACT ? 0 : AFFINE ? 3 : T_K + 1);
    localparam int QDEPTH = LAT + 1;

    // ---- issue: step counters, input handshake, credits -------------------------------------
    logic [SFW-1:0] sf;
    logic [NFW-1:0] nf;
    logic [WAW-1:0] waddr;
    logic last, fresh, space, go, loaded;
    assign last = sf == SFW'(SF - 1);
    assign fresh = nf == '0;  // nf = 0: the words come from the stream
    assign in_ready = loaded & fresh & (~last | space);
    assign go = loaded & (fresh ? in_valid : 1'b1) & (~last | space);
    always_ff @(posedge clk) begin
        if (!rst_n) begin
            sf <= '0;
            nf <= '0;
            waddr <= '0;
        end else if (go) begin
            sf <= last ? '0 : sf + 1'b1;
            if (last) nf <= (nf == NFW'(NF - 1)) ? '0 : nf + 1'b1;
            waddr <= (waddr == WAW'(WD - 1)) ? '0 : waddr + 1'b1;
        end
    end

    // ---- stage 1: weights and input word --------------------------------------------------
    logic v1, first1, last1, fresh1;
    logic [NFW-1:0] nf1;
    logic [WW-1:0] w1;
    logic [XW-1:0] xin1, x1;
    always_ff @(posedge clk) begin
        if (!rst_n) v1 <= 1'b0;
        else v1 <= go;
        if (go) begin
            first1 <= sf == '0;
            last1 <= last;
            fresh1 <= fresh;
            nf1 <= nf;
        end
        if (go & fresh) xin1 <= in_data;
    end
    if (W_LOAD) begin : g_load
        localparam int WB = (WW + 63) / 64;
        localparam int WBW = WB > 1 ? $clog2(WB) : 1;
        localparam longint OWN = longint'(WD) * WB;
        logic [63:0] bus;
        logic bus_v, mine, wr;
        logic [31:0] beat;
        logic [WBW-1:0] piece;
        logic [WAW-1:0] laddr;
        logic [WB*64-1:0] row;
        always_ff @(posedge clk) begin  // the bus registered: a broadcast to far-apart layers
            if (!rst_n) bus_v <= 1'b0;
            else bus_v <= wl_valid;
            bus <= wl_data;
        end
        assign mine = longint'(beat) >= WGT_BASE && longint'(beat) < WGT_BASE + OWN;
        always_ff @(posedge clk) begin
            if (!rst_n) begin
                beat <= '0;
                piece <= '0;
                laddr <= '0;
                wr <= 1'b0;
                loaded <= 1'b0;
            end else begin
                wr <= 1'b0;
                if (wr) begin
                    laddr <= (laddr == WAW'(WD - 1)) ? '0 : laddr + 1'b1;
                    if (laddr == WAW'(WD - 1)) loaded <= 1'b1;
                end
                if (bus_v) begin
                    beat <= (longint'(beat) == WGT_TOTAL - 1) ? '0 : beat + 1'b1;
                    if (mine) begin
                        if (longint'(beat) == WGT_BASE) loaded <= 1'b0;
                        piece <= (piece == WBW'(WB - 1)) ? '0 : piece + 1'b1;
                        wr <= piece == WBW'(WB - 1);
                    end
                end
            end
        end
        // a word's beats, least significant first (a generate choice: with one beat per word
        // the shift's part-select would be an empty range, which yosys-slang refuses)
        if (WB > 1) begin : g_beats
            always_ff @(posedge clk)
                if (bus_v & mine) row <= {bus, row[WB*64-1:64]};
        end else begin : g_beat
            always_ff @(posedge clk)
                if (bus_v & mine) row <= bus;
        end
        bireal_mvau_ram #(.WIDTH(WW), .DEPTH(WD), .STYLE(W_STYLE)) wram (
            .clk(clk), .we(wr), .waddr(laddr), .wdata(row[WW-1:0]), .raddr(waddr), .rdata(w1)
        );
    end else begin : g_rom
        assign loaded = 1'b1;
        bireal_mvau_rom #(.WIDTH(WW), .DEPTH(WD), .STYLE(W_STYLE), .FILE(WEIGHT_FILE)) wrom (
            .clk(clk), .en(go), .addr(waddr), .data(w1)
        );
    end
    if (NF > 1) begin : g_buf
        logic [XW-1:0] xbuf1;
        bireal_mvau_ram #(.WIDTH(XW), .DEPTH(SF), .STYLE(BUF_STYLE)) xbuf (
            .clk(clk), .we(go & fresh), .waddr(sf), .wdata(in_data), .raddr(sf), .rdata(xbuf1)
        );
        assign x1 = fresh1 ? xin1 : xbuf1;
    end else begin : g_nobuf
        assign x1 = xin1;
    end

    // ---- stage 2: dot products of the step; stage 3: accumulate (per PE) ----------------------
    logic v2, first2, last2, v3;
    logic [NFW-1:0] nf2, nf3;
    logic [PE*ACC_BITS-1:0] acc;  // the accumulators, lane p = channel nf3*PE + p
    always_ff @(posedge clk) begin
        if (!rst_n) begin
            v2 <= 1'b0;
            v3 <= 1'b0;
        end else begin
            v2 <= v1;
            v3 <= v2 & last2;
        end
        if (v1) begin
            first2 <= first1;
            last2 <= last1;
            nf2 <= nf1;
        end
        if (v2 & last2) nf3 <= nf2;
    end
    localparam int XA = IN_BITS + (IN_SIGNED ? 0 : 1);  // signed width of an input
    localparam int PW = XA + W_BITS;                     // signed width of a product
    // PACK = 1: lanes 2q and 2q+1 share one multiplier per element (bireal_fpga/arch/dsp.py):
    // c = {w_hi', PACK_S - W_BITS copies of w_lo's sign, w_lo} = w_hi * 2**PACK_S + w_lo, the
    // high lane storing w_hi' = w_hi - [w_lo < 0]; x * c holds x * w_lo in its low PACK_S bits
    // (signed) and x * w_hi = (x * c >>> PACK_S) + bit PACK_S - 1 above them.
    localparam int PAIRS = PACK ? PE / 2 : 0;
    localparam int CW = W_BITS + PACK_S;                 // signed width of c
    localparam int CPW = XA + CW;                        // ... and of x * c
    logic [PE*ACC_BITS-1:0] dots;  // a step's dot product per lane (lane p: bits p*ACC_BITS)
    function automatic logic signed [XA-1:0] x_elem(input logic [XW-1:0] x, input int i);
        return IN_SIGNED ? XA'($signed(x[i*IN_BITS +: IN_BITS]))
                         : XA'({1'b0, x[i*IN_BITS +: IN_BITS]});
    endfunction
    for (genvar q = 0; q < PAIRS; q++) begin : g_pair
        logic signed [ACC_BITS-1:0] slo, shi;
        always_comb begin
            slo = '0;
            shi = '0;
            for (int i = 0; i < SIMD; i++) begin : mac
                logic [W_BITS-1:0] wl, wh;
                logic signed [CW-1:0] c;
                logic signed [CPW-1:0] prod;
                logic signed [PACK_S-1:0] lo;
                wl = w1[(2*q*SIMD + i)*W_BITS +: W_BITS];
                wh = w1[((2*q + 1)*SIMD + i)*W_BITS +: W_BITS];
                c = $signed({wh, {(PACK_S - W_BITS){wl[W_BITS-1]}}, wl});
                prod = x_elem(x1, i) * c;
                lo = $signed(prod[PACK_S-1:0]);
                slo = slo + ACC_BITS'(lo);
                shi = shi + ACC_BITS'(prod >>> PACK_S) + ACC_BITS'({1'b0, prod[PACK_S-1]});
            end
        end
        assign dots[2*q*ACC_BITS +: ACC_BITS] = slo;
        assign dots[(2*q + 1)*ACC_BITS +: ACC_BITS] = shi;
    end
    for (genvar p = 2 * PAIRS; p < PE; p++) begin : g_lane
        logic signed [ACC_BITS-1:0] s;
        if (BINARY) begin : g_xnor
            assign s = ACC_BITS'($countones(~(x1 ^ w1[p*SIMD +: SIMD])));
        end else begin : g_mul
            always_comb begin
                s = '0;
                for (int i = 0; i < SIMD; i++) begin : mac
                    logic signed [W_BITS-1:0] wb;
                    logic signed [PW-1:0] prod;
                    wb = $signed(w1[(p*SIMD + i)*W_BITS +: W_BITS]);
                    prod = x_elem(x1, i) * wb;
                    s = s + ACC_BITS'(prod);
                end
            end
        end
        assign dots[p*ACC_BITS +: ACC_BITS] = s;
    end
    for (genvar p = 0; p < PE; p++) begin : g_pe
        logic signed [ACC_BITS-1:0] part, sum;
        always_ff @(posedge clk)
            if (v1) part <= dots[p*ACC_BITS +: ACC_BITS];
        always_ff @(posedge clk)
            if (v2) sum <= (first2 ? '0 : sum) + part;
        assign acc[p*ACC_BITS +: ACC_BITS] = sum;
    end

    // ---- activation and output queue ----------------------------------------------------------
    logic qwr;
    logic [PE*OUT_BITS-1:0] qdata;
    if (NO_ACT) begin : g_noact
        assign qwr = v3;
        for (genvar p = 0; p < PE; p++) begin : g_pe
            assign qdata[p*OUT_BITS +: OUT_BITS] =
                OUT_BITS'($signed(acc[p*ACC_BITS +: ACC_BITS]));
        end
    end else if (AFFINE) begin : g_affine
        bireal_affine_act #(
            .PE(PE), .NF(NF), .A(ACC_BITS), .M_BITS(A_M_BITS), .C_BITS(A_C_BITS),
            .SHIFT(A_SHIFT), .STEPS(A_STEPS), .OUT_BITS(OUT_BITS), .ACT_VAL(ACT_VAL),
            .STYLE(A_STYLE), .FILE(AFFINE_FILE)
        ) act (
            .clk(clk), .rst_n(rst_n), .in_valid(v3), .in_nf(nf3), .in_x(acc),
            .out_valid(qwr), .out_y(qdata)
        );
    end else begin : g_act
        logic [PE*T_BITS-1:0] tx;
        for (genvar p = 0; p < PE; p++) begin : g_pe
            assign tx[p*T_BITS +: T_BITS] = T_BITS'($signed(acc[p*ACC_BITS +: ACC_BITS]));
        end
        bireal_thresholds #(
            .PE(PE), .NF(NF), .TNF(T_NF), .SHARED(T_SHARED), .K(T_K), .S(T_S), .A(T_BITS),
            .OUT_BITS(OUT_BITS), .ACT_VAL(ACT_VAL), .STYLES(T_STYLES), .PREFIX(THR_PREFIX)
        ) thr (
            .clk(clk), .rst_n(rst_n), .in_valid(v3), .in_nf(nf3), .in_x(tx),
            .out_valid(qwr), .out_y(qdata)
        );
    end
    bireal_mvau_outq #(.WIDTH(PE * OUT_BITS), .DEPTH(QDEPTH)) q (
        .clk(clk), .rst_n(rst_n), .take(go & last), .space(space), .wr(qwr), .wdata(qdata),
        .out_data(out_data), .out_valid(out_valid), .out_ready(out_ready)
    );
endmodule
