// bireal_swg_buf: sliding-window generator over a circular buffer, one SIMD word per cycle.
//
// Input words arrive in image order (row, column, channel fold); input word q of the stream
// (counted across frames) lives at buffer address q mod DEPTH. The reader walks the windows
// (output row, output column) and inside each window (kernel row, kernel column, channel fold),
// which is increasing in q; it may read word q once q was written. The writer may write word q
// once word q - DEPTH is no longer needed: q - DEPTH < min(next read, first word of the next
// window), since both sequences only grow. Word positions are P-bit counters compared by their
// signed differences; addresses are kept mod DEPTH next to them. Reads are registered; a 2-word
// output queue absorbs the read latency, so the output runs at one word per cycle.
module bireal_swg_buf #(
    parameter int WIDTH = 8,      // SIMD * bits
    parameter int DEPTH = 16,     // buffer words
    parameter int STYLE = 1,      // 0 distributed, 1 block, 2 ultra
    parameter int P = 16,         // position counter bits
    parameter int CF = 1,         // channel folds per pixel
    parameter int KH = 3,
    parameter int KW = 3,
    parameter int OH = 1,
    parameter int OW = 1,
    parameter int INC_KH = 1,     // words to the next kernel row (one image row)
    parameter int INC_W = 1,      // words to the next window in a row (stride_w pixels)
    parameter int INC_H = 1,      // words to the next output row (stride_h image rows)
    parameter int INC_F = 1,      // words from the last output row to the next frame
    parameter int INC_KH_A = 1,   // the same, mod DEPTH
    parameter int INC_W_A = 1,
    parameter int INC_H_A = 1,
    parameter int INC_F_A = 1
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
    localparam int AW = DEPTH > 1 ? $clog2(DEPTH) : 1;
    localparam int JN = KW * CF;
    localparam int JB = JN > 1 ? $clog2(JN) : 1;
    localparam int KB = KH > 1 ? $clog2(KH) : 1;
    localparam int XB = OW > 1 ? $clog2(OW) : 1;
    localparam int YB = OH > 1 ? $clog2(OH) : 1;
    localparam logic [P-1:0] DEPTH_P = P'(DEPTH);
    localparam logic [P-1:0] FIRST_NT = P'(OW > 1 ? INC_W : (OH > 1 ? INC_H : INC_F));

    typedef logic [P-1:0] pos_t;
    typedef logic [AW-1:0] addr_t;

    function automatic addr_t add_a(addr_t a, int inc);
        logic [AW:0] s;
        s = {1'b0, a} + (AW + 1)'(inc);
        if (s >= (AW + 1)'(DEPTH)) s = s - (AW + 1)'(DEPTH);
        return s[AW-1:0];
    endfunction

    // ---- writer
    pos_t wr_q;
    addr_t wr_a;
    // ---- reader
    logic [JB-1:0] j;
    logic [KB-1:0] kh;
    logic [XB-1:0] ox;
    logic [YB-1:0] oy;
    pos_t rd_q, rs_q, tl_q, r0_q, nt_q;
    addr_t rd_a, rs_a, tl_a, r0_a;
    // ---- output queue
    logic [1:0] count;
    logic rv;  // a read is in flight (data in dout next cycle)
    logic [WIDTH-1:0] dout, e0, e1;

    pos_t d_wr, d_rd, d_nt, lowest;
    logic pop, issue, wr_en;
    assign d_rd = wr_q - rd_q;
    assign d_nt = rd_q - nt_q;
    assign lowest = d_nt[P-1] ? rd_q : nt_q;
    assign d_wr = wr_q - lowest;
    assign in_ready = d_wr[P-1] || (d_wr < DEPTH_P);
    assign wr_en = in_valid && in_ready;
    assign pop = out_valid && out_ready;
    assign issue = !d_rd[P-1] && (d_rd != '0) && ({1'b0, count} + {2'b0, rv} - {2'b0, pop} <= 3'd1);
    assign out_valid = count != 2'd0;
    assign out_data = e0;

    bireal_swg_ram #(.WIDTH(WIDTH), .DEPTH(DEPTH), .STYLE(STYLE)) mem (
        .clk(clk),
        .wr_en(wr_en), .wr_addr(wr_a), .wr_data(in_data),
        .rd_en(issue), .rd_addr(rd_a), .rd_data(dout)
    );

    // next reader state
    logic [JB-1:0] n_j;
    logic [KB-1:0] n_kh;
    logic [XB-1:0] n_ox;
    logic [YB-1:0] n_oy;
    pos_t n_rd_q, n_rs_q, n_tl_q, n_r0_q, n_nt_q;
    addr_t n_rd_a, n_rs_a, n_tl_a, n_r0_a;
    always_comb begin
        n_j = j; n_kh = kh; n_ox = ox; n_oy = oy;
        n_rd_q = rd_q; n_rs_q = rs_q; n_tl_q = tl_q; n_r0_q = r0_q; n_nt_q = nt_q;
        n_rd_a = rd_a; n_rs_a = rs_a; n_tl_a = tl_a; n_r0_a = r0_a;
        if (j != JB'(JN - 1)) begin
            n_j = j + 1'b1;
            n_rd_q = rd_q + 1'b1;
            n_rd_a = add_a(rd_a, 1);
        end else begin
            n_j = '0;
            if (kh != KB'(KH - 1)) begin
                n_kh = kh + 1'b1;
                n_rs_q = rs_q + P'(INC_KH);
                n_rs_a = add_a(rs_a, INC_KH_A);
            end else begin
                n_kh = '0;
                if (ox != XB'(OW - 1)) begin
                    n_ox = ox + 1'b1;
                    n_tl_q = tl_q + P'(INC_W);
                    n_tl_a = add_a(tl_a, INC_W_A);
                end else begin
                    n_ox = '0;
                    if (oy != YB'(OH - 1)) begin
                        n_oy = oy + 1'b1;
                        n_r0_q = r0_q + P'(INC_H);
                        n_r0_a = add_a(r0_a, INC_H_A);
                    end else begin
                        n_oy = '0;
                        n_r0_q = r0_q + P'(INC_F);
                        n_r0_a = add_a(r0_a, INC_F_A);
                    end
                    n_tl_q = n_r0_q;
                    n_tl_a = n_r0_a;
                end
                n_rs_q = n_tl_q;
                n_rs_a = n_tl_a;
                // first word of the window after the new one
                if (n_ox != XB'(OW - 1)) n_nt_q = n_tl_q + P'(INC_W);
                else if (n_oy != YB'(OH - 1)) n_nt_q = n_r0_q + P'(INC_H);
                else n_nt_q = n_r0_q + P'(INC_F);
            end
            n_rd_q = n_rs_q;
            n_rd_a = n_rs_a;
        end
    end

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            wr_q <= '0; wr_a <= '0;
            j <= '0; kh <= '0; ox <= '0; oy <= '0;
            rd_q <= '0; rs_q <= '0; tl_q <= '0; r0_q <= '0; nt_q <= FIRST_NT;
            rd_a <= '0; rs_a <= '0; tl_a <= '0; r0_a <= '0;
            count <= '0; rv <= 1'b0;
        end else begin
            if (wr_en) begin
                wr_q <= wr_q + 1'b1;
                wr_a <= add_a(wr_a, 1);
            end
            if (issue) begin
                j <= n_j; kh <= n_kh; ox <= n_ox; oy <= n_oy;
                rd_q <= n_rd_q; rs_q <= n_rs_q; tl_q <= n_tl_q; r0_q <= n_r0_q; nt_q <= n_nt_q;
                rd_a <= n_rd_a; rs_a <= n_rs_a; tl_a <= n_tl_a; r0_a <= n_r0_a;
            end
            rv <= issue;
            count <= count + {1'b0, rv} - {1'b0, pop};
        end
    end

    // output queue: e0 is the head
    always_ff @(posedge clk) begin
        if (pop) e0 <= e1;
        if (rv) begin
            if (count - {1'b0, pop} == 2'd0) e0 <= dout;
            else e1 <= dout;
        end
    end
endmodule
