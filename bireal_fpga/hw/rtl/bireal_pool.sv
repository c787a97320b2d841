// bireal_pool: FINN's Pool after a depthwise sliding window, in FINN's python (im2col) order:
// per output pixel KK kernel positions, each CF words of PE channels.
//   ACC = 0: MaxPool, the maximum of the window (OBITS == BITS).
//   ACC = 1: AccPool, the sum of the window as OBITS-bit values (each input extended by its
//            signedness; the caller makes sure OBITS holds every sum of up to KK inputs).
// Keeps the running result of every channel fold in a small (distributed) memory; the last
// kernel position emits f(running, input). One input word per cycle.
module bireal_pool #(
    parameter int PE = 1,
    parameter int BITS = 8,
    parameter bit SIGNED = 0,
    parameter int KK = 9,         // kernel positions per window
    parameter int CF = 1,         // channel folds: Channels / PE
    parameter bit ACC = 0,        // 0: maximum, 1: sum
    parameter int OBITS = BITS    // output element width (== BITS for the maximum)
) (
    input  logic                clk,
    input  logic                rst_n,
    input  logic [PE*BITS-1:0]  in_data,
    input  logic                in_valid,
    output logic                in_ready,
    output logic [PE*OBITS-1:0] out_data,
    output logic                out_valid,
    input  logic                out_ready
);
    localparam int WIDTH = PE * OBITS;
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
        for (genvar e = 0; e < PE; e++) begin : g_elem
            logic [BITS-1:0] b;
            logic [OBITS-1:0] a;
            assign a = run[e * OBITS +: OBITS];
            assign b = in_data[e * BITS +: BITS];
            if (ACC) begin : g_sum
                logic [OBITS-1:0] bx;  // the input extended to the output width
                if (OBITS == BITS) begin : g_same
                    assign bx = b;
                end else if (SIGNED) begin : g_sx
                    assign bx = {{(OBITS - BITS){b[BITS-1]}}, b};
                end else begin : g_zx
                    assign bx = {{(OBITS - BITS){1'b0}}, b};
                end
                assign best[e * OBITS +: OBITS] = first ? bx : a + bx;
            end else begin : g_max
                logic a_lt_b;
                if (SIGNED) begin : g_s
                    assign a_lt_b = $signed(a) < $signed(b);
                end else begin : g_u
                    assign a_lt_b = a < b;
                end
                assign best[e * OBITS +: OBITS] = (first || a_lt_b) ? b : a;
            end
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
