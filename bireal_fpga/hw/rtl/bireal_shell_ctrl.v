// bireal_shell_ctrl: the shell's AXI4-Lite control block and batch bookkeeping (Verilog-2001).
//
// Registers (32 bits, byte offsets; bireal_fpga/arch/shell.py is the one place that names them):
//   0x00 CTRL         w   bit 0 START: begin a batch of BATCH images (ignored while BUSY)
//   0x04 STATUS       r   bit 0 BUSY, bit 1 DONE (sticky until START), bit 2 WEIGHTS_LOADED
//   0x08 BATCH        rw  images in the next batch (a START with BATCH = 0 is ignored)
//   0x0C CYCLES_LO    r   cycles from START to the batch's last result beat (counting while BUSY)
//   0x10 CYCLES_HI    r   high word, latched when CYCLES_LO is read
//   0x14 IMAGES_DONE  r   images of this batch whose last result beat has left
//   0x18 WEIGHT_BEATS r   weight beats received since reset
//   0x1C BUILD_ID     r   the build's id
//   0x20 MAGIC        r   0x42524E31 ("BRN1")
//   0x24 IN_WORDS     r   image beats per image
//   0x28 OUT_WORDS    r   result beats per image
//   0x2C WEIGHT_TOTAL r   beats of one weight load (0: no run-time weights)
// Any other offset reads 0; writes to read-only registers are ignored (BRESP/RRESP are OKAY).
//
// Batch: after START the shell lets exactly BATCH * IN_WORDS image beats into the accelerator
// (img_enable), marks the BATCH * OUT_WORDS-th result beat as the last (out_last, the
// stream's TLAST), and then ends the batch (BUSY 0, DONE 1). AW and W are accepted
// independently (either may come first); one write and one read are in flight at a time.
module bireal_shell_ctrl #(
    parameter IN_WORDS = 1,
    parameter OUT_WORDS = 1,
    parameter WGT_TOTAL = 0,
    parameter [31:0] BUILD_ID = 32'h0,
    parameter ADDR_BITS = 12
) (
    input  wire                 clk,
    input  wire                 rst_n,
    // AXI4-Lite slave
    input  wire [ADDR_BITS-1:0] s_axi_awaddr,
    input  wire                 s_axi_awvalid,
    output wire                 s_axi_awready,
    input  wire [31:0]          s_axi_wdata,
    input  wire [3:0]           s_axi_wstrb,
    input  wire                 s_axi_wvalid,
    output wire                 s_axi_wready,
    output wire [1:0]           s_axi_bresp,
    output reg                  s_axi_bvalid,
    input  wire                 s_axi_bready,
    input  wire [ADDR_BITS-1:0] s_axi_araddr,
    input  wire                 s_axi_arvalid,
    output wire                 s_axi_arready,
    output reg  [31:0]          s_axi_rdata,
    output wire [1:0]           s_axi_rresp,
    output reg                  s_axi_rvalid,
    input  wire                 s_axi_rready,
    // the streams' handshakes
    input  wire                 img_fire,   // an image beat entered the accelerator
    output wire                 img_enable, // image beats may enter
    input  wire                 out_fire,   // a result beat left
    output wire                 out_last,   // the result beat on the bus is the batch's last
    input  wire                 wgt_fire    // a weight beat entered
);
    localparam [31:0] MAGIC = 32'h42524E31;

    reg         busy, done;
    reg  [31:0] batch;
    reg  [63:0] cycles;
    reg  [31:0] cycles_hi_latch;
    reg  [31:0] img_images, img_words;  // images fully sent, beats of the current one
    reg  [31:0] out_images, out_words;  // the same for results
    reg  [31:0] wgt_beats;

    // ---- write channel: AW and W latched separately, one response per write
    reg                 aw_held, w_held;
    reg [ADDR_BITS-1:0] aw_addr;
    reg [31:0]          w_data;
    reg [3:0]           w_strb;
    assign s_axi_awready = ~aw_held & ~s_axi_bvalid;
    assign s_axi_wready  = ~w_held & ~s_axi_bvalid;
    assign s_axi_bresp   = 2'b00;
    wire                 aw_now = aw_held | (s_axi_awvalid & s_axi_awready);
    wire                 w_now  = w_held | (s_axi_wvalid & s_axi_wready);
    wire [ADDR_BITS-1:0] wr_addr = aw_held ? aw_addr : s_axi_awaddr;
    wire [31:0]          wr_data = w_held ? w_data : s_axi_wdata;
    wire [3:0]           wr_strb = w_held ? w_strb : s_axi_wstrb;
    wire                 wr_go = aw_now & w_now & ~s_axi_bvalid;
    wire [ADDR_BITS-3:0] wr_reg = wr_addr[ADDR_BITS-1:2];
    wire                 start = wr_go & (wr_reg == 0) & wr_strb[0] & wr_data[0] & ~busy
                                 & (batch != 32'd0);

    function [31:0] merge;  // a register updated under byte strobes
        input [31:0] old, data;
        input [3:0]  strb;
        integer b;
        begin
            for (b = 0; b < 4; b = b + 1)
                merge[8*b +: 8] = strb[b] ? data[8*b +: 8] : old[8*b +: 8];
        end
    endfunction

    // ---- batch bookkeeping
    wire img_last_word = img_words == IN_WORDS - 1;
    wire out_last_word = out_words == OUT_WORDS - 1;
    assign img_enable = busy & (img_images < batch);
    assign out_last = busy & out_last_word & (out_images == batch - 1);

    always @(posedge clk) begin
        if (!rst_n) begin
            aw_held <= 1'b0;
            w_held <= 1'b0;
            aw_addr <= {ADDR_BITS{1'b0}};
            w_data <= 32'd0;
            w_strb <= 4'd0;
            s_axi_bvalid <= 1'b0;
            busy <= 1'b0;
            done <= 1'b0;
            batch <= 32'd1;
            cycles <= 64'd0;
            img_images <= 32'd0;
            img_words <= 32'd0;
            out_images <= 32'd0;
            out_words <= 32'd0;
            wgt_beats <= 32'd0;
        end else begin
            if (s_axi_awvalid & s_axi_awready & ~wr_go) begin
                aw_held <= 1'b1;
                aw_addr <= s_axi_awaddr;
            end
            if (s_axi_wvalid & s_axi_wready & ~wr_go) begin
                w_held <= 1'b1;
                w_data <= s_axi_wdata;
                w_strb <= s_axi_wstrb;
            end
            if (wr_go) begin
                aw_held <= 1'b0;
                w_held <= 1'b0;
                s_axi_bvalid <= 1'b1;
                if (wr_reg == 2) batch <= merge(batch, wr_data, wr_strb);
            end else if (s_axi_bvalid & s_axi_bready) begin
                s_axi_bvalid <= 1'b0;
            end
            if (wgt_fire) wgt_beats <= wgt_beats + 32'd1;
            if (start) begin
                busy <= 1'b1;
                done <= 1'b0;
                cycles <= 64'd0;
                img_images <= 32'd0;
                img_words <= 32'd0;
                out_images <= 32'd0;
                out_words <= 32'd0;
            end else if (busy) begin
                cycles <= cycles + 64'd1;
                if (img_fire) begin
                    img_words <= img_last_word ? 32'd0 : img_words + 32'd1;
                    if (img_last_word) img_images <= img_images + 32'd1;
                end
                if (out_fire) begin
                    out_words <= out_last_word ? 32'd0 : out_words + 32'd1;
                    if (out_last_word) out_images <= out_images + 32'd1;
                    if (out_last) begin
                        busy <= 1'b0;
                        done <= 1'b1;
                    end
                end
            end
        end
    end

    // ---- read channel: one read at a time, data registered
    wire                 loaded = (WGT_TOTAL == 0) || (wgt_beats >= WGT_TOTAL);
    wire [ADDR_BITS-3:0] rd_reg = s_axi_araddr[ADDR_BITS-1:2];
    assign s_axi_arready = ~s_axi_rvalid;
    assign s_axi_rresp = 2'b00;
    reg [31:0] rd_value;
    always @(*) begin
        case (rd_reg)
            1:  rd_value = {29'd0, loaded, done, busy};
            2:  rd_value = batch;
            3:  rd_value = cycles[31:0];
            4:  rd_value = cycles_hi_latch;
            5:  rd_value = out_images;
            6:  rd_value = wgt_beats;
            7:  rd_value = BUILD_ID;
            8:  rd_value = MAGIC;
            9:  rd_value = IN_WORDS;
            10: rd_value = OUT_WORDS;
            11: rd_value = WGT_TOTAL;
            default: rd_value = 32'd0;
        endcase
    end
    always @(posedge clk) begin
        if (!rst_n) begin
            s_axi_rvalid <= 1'b0;
            s_axi_rdata <= 32'd0;
            cycles_hi_latch <= 32'd0;
        end else if (s_axi_arvalid & s_axi_arready) begin
            s_axi_rvalid <= 1'b1;
            s_axi_rdata <= rd_value;
            if (rd_reg == 3) cycles_hi_latch <= cycles[63:32];
        end else if (s_axi_rvalid & s_axi_rready) begin
            s_axi_rvalid <= 1'b0;
        end
    end
endmodule
