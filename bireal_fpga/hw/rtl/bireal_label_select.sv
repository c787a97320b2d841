// bireal_label_select: the indices of the K largest of LABELS values (top-K), largest first,
// equal values in index order (lower index first), as ONNX TopK. A vector of LABELS values
// comes as FOLDS words of PE lanes; its K indices leave as K words of OB bits.
// A sorted list of the best K (value, index) pairs is updated with the PE lanes of each word
// in lane order (a strict > comparison keeps the earlier index on ties). At the last word
// the list moves to an output buffer, so the next vector streams in while the K indices go out:
// max(FOLDS, K) cycles per vector at full rate.
module bireal_label_select #(
    parameter int PE = 1,
    parameter int IB = 32,
    parameter bit IS = 1'b1,
    parameter int LABELS = 10,
    parameter int K = 1,
    parameter int OB = 8
) (
    input  logic             clk,
    input  logic             rst_n,
    input  logic [PE*IB-1:0] in_data,
    input  logic             in_valid,
    output logic             in_ready,
    output logic [OB-1:0]    out_data,
    output logic             out_valid,
    input  logic             out_ready
);
    localparam int FOLDS = LABELS / PE;
    localparam int XW = IB + 1;  // values compared as signed XW-bit numbers
    localparam int IXW = LABELS > 1 ? $clog2(LABELS) : 1;
    localparam int FW = FOLDS > 1 ? $clog2(FOLDS) : 1;
    localparam int KW = $clog2(K + 1);

    logic [FW-1:0] fold;
    logic [IXW-1:0] base;  // index of lane 0 of the current word
    logic last, fire, out_free;

    // best K so far, sorted: val[0] is the largest; n entries are filled
    logic signed [XW-1:0] val[K];
    logic [IXW-1:0] idx[K];
    logic [KW-1:0] n;
    // the list after this word's lanes
    logic signed [XW-1:0] nval[K];
    logic [IXW-1:0] nidx[K];
    logic [KW-1:0] nn;

    // output buffer: oidx[0] goes out next, opending words left
    logic [IXW-1:0] oidx[K];
    logic [KW-1:0] opending;

    assign last = fold == FW'(FOLDS - 1);
    assign out_valid = opending != '0;
    assign out_data = OB'(oidx[0]);
    // the buffer can take a new list: empty, or its last word leaves now
    assign out_free = opending == '0 || (opending == KW'(1) && out_ready);
    assign in_ready = !last || out_free;
    assign fire = in_valid && in_ready;

    always_comb begin
        logic signed [XW-1:0] v;
        logic [IXW-1:0] ix;
        logic [K-1:0] ge;  // ge[j]: the candidate goes at or before position j
        nn = fold == '0 ? '0 : n;
        for (int j = 0; j < K; j++) begin
            nval[j] = val[j];
            nidx[j] = idx[j];
        end
        for (int l = 0; l < PE; l++) begin
            v = IS ? XW'($signed(in_data[l*IB +: IB])) : XW'(in_data[l*IB +: IB]);
            ix = base + IXW'(l);
            for (int j = 0; j < K; j++) ge[j] = KW'(j) >= nn || v > nval[j];
            for (int j = K - 1; j >= 0; j--) begin
                if (ge[j]) begin
                    if (j > 0 && ge[j-1]) begin
                        nval[j] = nval[j-1];
                        nidx[j] = nidx[j-1];
                    end else begin
                        nval[j] = v;
                        nidx[j] = ix;
                    end
                end
            end
            if (nn != KW'(K)) nn = nn + 1'b1;
        end
    end

    always_ff @(posedge clk) begin
        if (fire) begin
            for (int j = 0; j < K; j++) begin
                val[j] <= nval[j];
                idx[j] <= nidx[j];
            end
        end
        if (fire && last) begin
            for (int j = 0; j < K; j++) oidx[j] <= nidx[j];
        end else if (out_valid && out_ready) begin
            for (int j = 0; j + 1 < K; j++) oidx[j] <= oidx[j+1];
        end
    end
    always_ff @(posedge clk) begin
        if (!rst_n) begin
            fold <= '0;
            base <= '0;
            n <= '0;
            opending <= '0;
        end else begin
            if (fire) begin
                n <= nn;
                fold <= last ? '0 : fold + 1'b1;
                base <= last ? '0 : base + IXW'(PE);
            end
            if (fire && last) opending <= KW'(K);
            else if (out_valid && out_ready) opending <= opending - 1'b1;
        end
    end
endmodule
