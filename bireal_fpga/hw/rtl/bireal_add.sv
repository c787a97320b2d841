// bireal_add: element-wise lhs + rhs over PE lanes, result in OB-bit two's complement
// (wrapping, as FINN's out_dtype).
// CONST_RHS = 0: two input streams, a word leaves both when the sum is taken.
// CONST_RHS = 1: one input stream (lhs); rhs comes from a ROM of NCONST words that repeats
//                with period NCONST words (e.g. a per-channel bias), read one word ahead.
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
    parameter string RAM_STYLE = "auto"  // auto | block | distributed (URAM cannot be preloaded)
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

    logic advance;  // the output register can take a new sum
    logic fire;  // a sum is taken this cycle
    logic [PE*RB-1:0] rhs;
    logic [PE*OB-1:0] sum;

    assign advance = !out_valid || out_ready;

    if (CONST_RHS) begin : g_const
        localparam int CAW = NCONST > 1 ? $clog2(NCONST) : 1;
        logic [CAW-1:0] addr, next_addr;
        logic [PE*RB-1:0] rom_q;
        assign fire = lhs_valid && advance;
        assign lhs_ready = advance;
        assign rhs_ready = 1'b0;
        assign rhs = rom_q;
        assign next_addr = !fire ? addr : (addr == CAW'(NCONST - 1) ? '0 : addr + 1'b1);
        always_ff @(posedge clk) begin
            if (!rst_n) addr <= '0;
            else addr <= next_addr;
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
