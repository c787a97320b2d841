// bireal_add: element-wise lhs + rhs over PE lanes, result in OB-bit two's complement
// (wrapping, as FINN's out_dtype).
// CONST_RHS = 0: two input streams, a word leaves both when the sum is taken.
// CONST_RHS = 1: one input stream (lhs); rhs comes from a ROM of NCONST words, read one word
//                ahead (the form is chosen by bireal_fpga.arch.constants):
//   BORDER = 0: the words repeat with period NCONST words (e.g. a per-channel bias);
//   BORDER = 1: a frame of ROWS x COLS pixels of WPP words, whose constant depends only on the
//               pixel's row class and column class (e.g. a zero-padded conv's border
//               correction): word w of pixel (r, c) is
//               rom[(ROW_CLASS[r] * NC + COL_CLASS[c]) * WPP + w], NCONST = NR * NC * WPP
//               (ROW_CLASS: RCB bits per row, row r at bits r * RCB; COL_CLASS: CCB per column).
// The output is registered; one word per cycle at full rate.
module bireal_add #(
    parameter int PE = 1,
    parameter int LB = 8,
    parameter bit LS = 1'b1,
    parameter int RB = 8,
    parameter bit RS = 1'b1,
    parameter int OB = 32,
    parameter bit CONST_RHS = 1'b0,
    parameter int NCONST = 1,
    parameter string CONST_FILE = "",
    parameter string RAM_STYLE = "auto",  // auto | block | distributed (URAM cannot be preloaded)
    parameter bit BORDER = 1'b0,
    parameter int ROWS = 1,
    parameter int COLS = 1,
    parameter int WPP = 1,
    parameter int NC = 1,
    parameter int RCB = 1,
    parameter int CCB = 1,
    parameter logic [ROWS*RCB-1:0] ROW_CLASS = '0,
    parameter logic [COLS*CCB-1:0] COL_CLASS = '0
) (
    input  logic             clk,
    input  logic             rst_n,
    input  logic [PE*LB-1:0] lhs_data,
    input  logic             lhs_valid,
    output logic             lhs_ready,
    input  logic [PE*RB-1:0] rhs_data,
    input  logic             rhs_valid,
    output logic             rhs_ready,
    output logic [PE*OB-1:0] out_data,
    output logic             out_valid,
    input  logic             out_ready
);
    localparam int XB = (LB > RB ? LB : RB) > OB ? (LB > RB ? LB : RB) : OB;
    localparam int CAW = NCONST > 1 ? $clog2(NCONST) : 1;  // the constant ROM's address bits

    // border form: the ROM address of word 0 of each row's / column's class (from the class
    // maps; row r's at bits r * CAW), and of the frame's first word
    function automatic logic [ROWS*CAW-1:0] row_bases();
        logic [ROWS*CAW-1:0] v = '0;
        for (int r = 0; r < ROWS; r++)
            v[r*CAW +: CAW] = CAW'(int'(ROW_CLASS[r*RCB +: RCB]) * NC * WPP);
        return v;
    endfunction
    function automatic logic [COLS*CAW-1:0] col_bases();
        logic [COLS*CAW-1:0] v = '0;
        for (int c = 0; c < COLS; c++)
            v[c*CAW +: CAW] = CAW'(int'(COL_CLASS[c*CCB +: CCB]) * WPP);
        return v;
    endfunction
    localparam logic [ROWS*CAW-1:0] ROW_BASE = row_bases();
    localparam logic [COLS*CAW-1:0] COL_BASE = col_bases();
    localparam logic [CAW-1:0] ADDR0 = ROW_BASE[CAW-1:0] + COL_BASE[CAW-1:0];

    logic advance;  // the output register can take a new sum
    logic fire;  // a sum is taken this cycle
    logic [PE*RB-1:0] rhs;
    logic [PE*OB-1:0] sum;

    assign advance = !out_valid || out_ready;

    if (CONST_RHS) begin : g_const
        logic [CAW-1:0] addr, next_addr;
        logic [PE*RB-1:0] rom_q;
        assign fire = lhs_valid && advance;
        assign lhs_ready = advance;
        assign rhs_ready = 1'b0;
        assign rhs = rom_q;
        if (BORDER) begin : g_border
            localparam int WW = WPP > 1 ? $clog2(WPP) : 1;
            localparam int CW = COLS > 1 ? $clog2(COLS) : 1;
            localparam int RW = ROWS > 1 ? $clog2(ROWS) : 1;
            // the position of the word the next sum needs (the word rom_q holds)
            logic [WW-1:0] word;
            logic [CW-1:0] col, col_n;
            logic [RW-1:0] row, row_n;
            logic last_word, last_col, last_row;
            logic [CAW-1:0] step_addr;  // the address of the word after it
            assign last_word = word == WW'(WPP - 1);
            assign last_col = col == CW'(COLS - 1);
            assign last_row = row == RW'(ROWS - 1);
            assign col_n = last_col ? '0 : col + 1'b1;
            assign row_n = last_row ? '0 : row + 1'b1;
            assign step_addr = !last_word ? addr + 1'b1
                : !last_col ? ROW_BASE[row*CAW +: CAW] + COL_BASE[col_n*CAW +: CAW]
                : ROW_BASE[row_n*CAW +: CAW] + COL_BASE[CAW-1:0];
            assign next_addr = !rst_n ? ADDR0 : (fire ? step_addr : addr);
            always_ff @(posedge clk) begin
                if (!rst_n) begin
                    word <= '0;
                    col <= '0;
                    row <= '0;
                end else if (fire) begin
                    word <= last_word ? '0 : word + 1'b1;
                    if (last_word) begin
                        col <= col_n;
                        if (last_col) row <= row_n;
                    end
                end
            end
            always_ff @(posedge clk) addr <= next_addr;
        end else begin : g_period
            assign next_addr = !fire ? addr : (addr == CAW'(NCONST - 1) ? '0 : addr + 1'b1);
            always_ff @(posedge clk) begin
                if (!rst_n) addr <= '0;
                else addr <= next_addr;
            end
        end
        // registered ROM read of the word the next sum needs
        if (RAM_STYLE == "block") begin : g_block
            (* rom_style = "block", ram_style = "block" *) logic [PE*RB-1:0] rom[NCONST];
            initial $readmemh(CONST_FILE, rom);
            always_ff @(posedge clk) rom_q <= rom[next_addr];
        end else if (RAM_STYLE == "distributed") begin : g_distributed
            (* rom_style = "distributed", ram_style = "distributed" *) logic [PE*RB-1:0] rom[NCONST];
            initial $readmemh(CONST_FILE, rom);
            always_ff @(posedge clk) rom_q <= rom[next_addr];
        end else begin : g_auto
            logic [PE*RB-1:0] rom[NCONST];
            initial $readmemh(CONST_FILE, rom);
            always_ff @(posedge clk) rom_q <= rom[next_addr];
        end
    end else begin : g_stream
        assign fire = lhs_valid && rhs_valid && advance;
        assign lhs_ready = rhs_valid && advance;
        assign rhs_ready = lhs_valid && advance;
        assign rhs = rhs_data;
    end

    for (genvar i = 0; i < PE; i++) begin : g_lane
        logic [XB:0] a, b, s;
        assign a = LS ? (XB + 1)'($signed(lhs_data[i*LB +: LB])) : (XB + 1)'(lhs_data[i*LB +: LB]);
        assign b = RS ? (XB + 1)'($signed(rhs[i*RB +: RB])) : (XB + 1)'(rhs[i*RB +: RB]);
        assign s = a + b;
        assign sum[i*OB +: OB] = s[OB-1:0];
    end

    always_ff @(posedge clk) begin
        if (!rst_n) out_valid <= 1'b0;
        else if (advance) out_valid <= fire;
    end
    always_ff @(posedge clk) begin
        if (fire) out_data <= sum;
    end
endmodule
