// bireal_dwc: AXI-stream data width converter, IW-bit words in, OW-bit words out, any ratio.
// The stream is a bit sequence, least significant bits first (element 0 of a word first), so
// element order is kept. The words sit in a ring of CAP bits (CAP a multiple of both IW and
// OW, i.e. of their least common multiple): input words are written at IW-aligned slots,
// output words read from OW-aligned slots, a bit count tracks the fill level.
//
// COMB_READY = 0: in_ready = (fill + IW <= CAP), from registers only; the generator picks a
//                 CAP that keeps the wider side at full rate with it.
// COMB_READY = 1: in_ready also counts the OW bits leaving in this cycle (a combinational path
//                 from out_ready), which reaches full rate with CAP = lcm(IW, OW).
module bireal_dwc #(
    parameter int IW = 8,
    parameter int OW = 16,
    parameter int CAP = 32,
    parameter bit COMB_READY = 1'b0
) (
    input  logic          clk,
    input  logic          rst_n,
    input  logic [IW-1:0] in_data,
    input  logic          in_valid,
    output logic          in_ready,
    output logic [OW-1:0] out_data,
    output logic          out_valid,
    input  logic          out_ready
);
    if (IW == OW) begin : g_wire
        assign out_data = in_data;
        assign out_valid = in_valid;
        assign in_ready = out_ready;
    end else begin : g_ring
        localparam int NW = CAP / IW;  // input slots in the ring
        localparam int NR = CAP / OW;  // output slots in the ring
        localparam int WPW = NW > 1 ? $clog2(NW) : 1;
        localparam int RPW = NR > 1 ? $clog2(NR) : 1;
        localparam int FW = $clog2(CAP + 1) + 1;  // fill level in bits, with headroom

        logic [CAP-1:0] ring;
        logic [WPW-1:0] wp;
        logic [RPW-1:0] rp;
        logic [FW-1:0] fill;
        logic wr, rd;

        assign out_valid = fill >= FW'(OW);
        assign rd = out_valid & out_ready;
        if (COMB_READY) begin : g_comb
            assign in_ready = fill + FW'(IW) <= FW'(CAP) + (rd ? FW'(OW) : FW'(0));
        end else begin : g_reg
            assign in_ready = fill <= FW'(CAP - IW);
        end
        assign wr = in_valid & in_ready;

        // read: an NR:1 mux over the OW-aligned slots; write: enables of the IW-aligned slots
        // (constant part-selects only, no shifter over the ring). Loops in one process rather
        // than a process per slot: the same logic, and far cheaper for Verilator
        always_comb begin
            out_data = ring[0 +: OW];
            for (int k = 1; k < NR; k++) begin
                if (RPW'(k) == rp) out_data = ring[k*OW +: OW];
            end
        end
        always_ff @(posedge clk) begin
            if (wr) begin
                for (int k = 0; k < NW; k++) begin
                    if (NW == 1 || wp == WPW'(k)) ring[k*IW +: IW] <= in_data;
                end
            end
        end
        always_ff @(posedge clk) begin
            if (!rst_n) begin
                wp <= '0;
                rp <= '0;
                fill <= '0;
            end else begin
                if (wr && NW > 1) wp <= wp == WPW'(NW - 1) ? '0 : wp + 1'b1;
                if (rd && NR > 1) rp <= rp == RPW'(NR - 1) ? '0 : rp + 1'b1;
                fill <= fill + (wr ? FW'(IW) : FW'(0)) - (rd ? FW'(OW) : FW'(0));
            end
        end
    end
endmodule
