// bireal_pool: FINN's Pool with Function MaxPool after a depthwise sliding window, in FINN's
// python (im2col) order: per output pixel KK kernel positions, each CF words of PE channels.
// Keeps the running maximum of every channel fold in a small (distributed) memory; the last
// kernel position emits max(running, input). One input word per cycle.
module bireal_pool #(
    parameter int PE = 1,
    parameter int BITS = 8,
    parameter bit SIGNED = 0,
    parameter int KK = 9,         // kernel positions per window
    parameter int CF = 1          // channel folds: Channels / PE
) (
    input  logic               clk,
    input  logic               rst_n,
    input  logic [PE*BITS-1:0] in_data,
    input  logic               in_valid,
    output logic               in_ready,
    output logic [PE*BITS-1:0] out_data,
    output logic               out_valid,
    input  logic               out_ready
);
    localparam int WIDTH = PE * BITS;
    localparam int KB = KK > 1 ? $clog2(KK) : 1;
    localparam int CB = CF > 1 ? $clog2(CF) : 1;

    logic [KB-1:0] k;
    logic [CB-1:0] c;
    logic first, last, take;
    logic [WIDTH-1:0] run, best;
    (* ram_style = "distributed" *) logic [WIDTH-1:0] acc [CF];

    assign first = k == '0;
    assign last = k == KB'(KK - 1);
    assign in_ready = !last || !out_valid || out_ready;
    assign take = in_valid && in_ready;
    assign run = acc[c];

    generate
        for (genvar e = 0; e < PE; e++) begin : g_max
            logic [BITS-1:0] a, b;
            logic a_lt_b;
            assign a = run[e * BITS +: BITS];
            assign b = in_data[e * BITS +: BITS];
            if (SIGNED) begin : g_s
                assign a_lt_b = $signed(a) < $signed(b);
            end else begin : g_u
                assign a_lt_b = a < b;
            end
            assign best[e * BITS +: BITS] = (first || a_lt_b) ? b : a;
        end
    endgenerate

    always_ff @(posedge clk) begin
        if (take && !last) acc[c] <= best;
        if (take && last) out_data <= best;
    end

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            k <= '0; c <= '0; out_valid <= 1'b0;
        end else begin
            if (out_ready) out_valid <= 1'b0;
            if (take) begin
                if (last) out_valid <= 1'b1;
                if (c != CB'(CF - 1)) begin
                    c <= c + 1'b1;
                end else begin
                    c <= '0;
                    k <= last ? '0 : k + 1'b1;
                end
            end
        end
    end
endmodule
