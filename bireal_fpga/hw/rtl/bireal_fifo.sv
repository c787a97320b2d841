// bireal_fifo: a synchronous first-word-fall-through AXI-stream FIFO that holds DEPTH words
// (DEPTH >= 2) and moves one word per cycle in and out at every depth.
// in_ready and out_valid come from registers only (no combinational path through the FIFO),
// so a FIFO of depth 2 is a full-rate register slice between two layers.
//
// DEPTH = 2: two word registers (any RAM_STYLE). Otherwise RAM_STYLE:
//   "srl"                           shift register addressed by the fill level (SRL16/32);
//                                   for shallow FIFOs (depth <= 33)
//   "distributed" "block" "ultra"   simple dual-port memory of DEPTH words with a registered
//                                   read (LUTRAM / BRAM / URAM) and a 2-word output buffer that
//                                   hides the read latency (capacity DEPTH + 2); a word that
//                                   finds the memory empty goes straight to the output buffer
//
// Both take a word out one cycle after it came in when the FIFO is empty.
module bireal_fifo #(
    parameter int WIDTH = 8,
    parameter int DEPTH = 2,
    parameter string RAM_STYLE = "srl"
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
    localparam int CW = $clog2(DEPTH + 1);  // fill level 0..DEPTH
    localparam int AW = DEPTH > 2 ? $clog2(DEPTH) : 1;

    logic wr, rd;
    assign wr = in_valid & in_ready;
    assign rd = out_valid & out_ready;

    if (DEPTH == 2) begin : g_regs
        // two word registers: r0 is the head (a full-rate register slice); the same
        // handshake and timing as the shift register, word-wide (cheap to simulate)
        logic [1:0] count;
        logic [WIDTH-1:0] r0, r1;
        assign in_ready = count != 2'd2;
        assign out_valid = count != 2'd0;
        assign out_data = r0;
        always_ff @(posedge clk) begin
            if (rd) r0 <= r1;
            if (wr) begin
                if (count == 2'd0 || rd) r0 <= in_data;  // (a write needs count < 2)
                else r1 <= in_data;
            end
        end
        always_ff @(posedge clk) begin
            if (!rst_n) count <= 2'd0;
            else if (wr != rd) count <= wr ? count + 2'd1 : count - 2'd1;
        end
    end else if (RAM_STYLE == "srl") begin : g_srl
        // Every write shifts the register chain; the oldest word sits at index count-1.
        // per bit lane a chain of DEPTH flops read at the fill level (the dynamic shift-register
        // template that maps to SRL16E/SRLC32E on Xilinx)
        logic [CW-1:0] count;
        logic [AW-1:0] head;  // count - 1 while not empty
        assign in_ready = count != CW'(DEPTH);
        assign out_valid = count != '0;
`ifdef BIREAL_SRL_LANES
        // The same shift register written per bit lane: a chain of DEPTH flops read at the fill
        // level, the form in which yosys (xilinx_srl) finds SRL16E/SRLC32E. Only the yosys
        // resource estimate reads this form (read_slang -D BIREAL_SRL_LANES); a test
        // simulates both forms and compares them cycle by cycle.
        for (genvar b = 0; b < WIDTH; b++) begin : g_lane
            logic [DEPTH-1:0] sr;
            always_ff @(posedge clk) begin
                if (wr) sr <= {sr[DEPTH-2:0], in_data[b]};
            end
            assign out_data[b] = sr[head +: 1];
        end
`else
        // Word-wide: an array shifted on every write and read at the fill level, Vivado's
        // dynamic shift-register template (UG901; FINN's Q_srl and Vitis HLS's FIFOs are
        // written so), which it maps to SRL16E/SRLC32E per bit; Verilator moves whole words.
        logic [WIDTH-1:0] sr[DEPTH];
        always_ff @(posedge clk) begin
            if (wr) begin
                sr[0] <= in_data;
                for (int i = 1; i < DEPTH; i++) sr[i] <= sr[i-1];
            end
        end
        assign out_data = sr[head];
`endif
        always_ff @(posedge clk) begin
            if (!rst_n) begin
                count <= '0;
                head <= '0;
            end else if (wr != rd) begin
                count <= wr ? count + 1'b1 : count - 1'b1;
                // head follows count - 1, staying at 0 when the FIFO runs empty
                if (wr && count != '0) head <= head + 1'b1;
                if (rd && count != CW'(1)) head <= head - 1'b1;
            end
        end
    end else begin : g_ram
        // memory: written at wptr, read (registered) at rptr
        logic [AW-1:0] wptr, rptr;
        logic [CW-1:0] mcount;  // words in the memory
        logic issue;  // a read of rptr this cycle
        logic inflight;  // rdata holds the word read in the previous cycle
        logic [WIDTH-1:0] rdata;
        // output buffer: ob0 is the head, ob1 the next word
        logic [WIDTH-1:0] ob0, ob1;
        logic [1:0] ocount;
        logic [1:0] left;  // words in the output buffer once this cycle's read-out is gone
        logic bypass;  // the input word goes straight to the output buffer
        logic mwr;  // the input word goes to the memory
        logic arrive;  // a word enters the output buffer
        logic [WIDTH-1:0] arrival;

        assign in_ready = mcount != CW'(DEPTH);
        assign out_valid = ocount != 2'd0;
        assign out_data = ob0;
        assign left = ocount - {1'b0, rd};
        // issue a read only when its word will find a free place in the output buffer
        assign issue = (mcount != '0) && ({1'b0, left} + {2'b0, inflight} < 3'd2);
        // with nothing in the memory or in flight, a word skips the memory: the latency is
        // one cycle, as in the shift register
        assign bypass = wr && mcount == '0 && !inflight && left != 2'd2;
        assign mwr = wr && !bypass;
        assign arrive = inflight || bypass;
        assign arrival = inflight ? rdata : in_data;

        if (RAM_STYLE == "block") begin : g_block
            (* ram_style = "block" *) logic [WIDTH-1:0] mem[DEPTH];
            always_ff @(posedge clk) begin
                if (mwr) mem[wptr] <= in_data;
                if (issue) rdata <= mem[rptr];
            end
        end else if (RAM_STYLE == "ultra") begin : g_ultra
            (* ram_style = "ultra" *) logic [WIDTH-1:0] mem[DEPTH];
            always_ff @(posedge clk) begin
                if (mwr) mem[wptr] <= in_data;
                if (issue) rdata <= mem[rptr];
            end
        end else begin : g_distributed
            (* ram_style = "distributed" *) logic [WIDTH-1:0] mem[DEPTH];
            always_ff @(posedge clk) begin
                if (mwr) mem[wptr] <= in_data;
                if (issue) rdata <= mem[rptr];
            end
        end

        always_ff @(posedge clk) begin
            if (rd) ob0 <= ob1;
            if (arrive) begin
                if (left == 2'd0) ob0 <= arrival;
                else ob1 <= arrival;
            end
        end
        always_ff @(posedge clk) begin
            if (!rst_n) begin
                wptr <= '0;
                rptr <= '0;
                mcount <= '0;
                inflight <= 1'b0;
                ocount <= 2'd0;
            end else begin
                if (mwr) wptr <= wptr == AW'(DEPTH - 1) ? '0 : wptr + 1'b1;
                if (issue) rptr <= rptr == AW'(DEPTH - 1) ? '0 : rptr + 1'b1;
                if (mwr != issue) mcount <= mwr ? mcount + 1'b1 : mcount - 1'b1;
                inflight <= issue;
                ocount <= left + {1'b0, arrive};
            end
        end
    end
endmodule
