"""The board shell: the Verilog-2001 wrapper around the stitched accelerator that a Vivado block
design instantiates (AXI DMA streams with TLAST, an AXI4-Lite control block, the run-time
weight stream), and its description ``shell.json`` for the Vivado project and the driver."""
