"""RTL generation: one SystemVerilog instance per dataflow node, and the stitched top module.

The layer modules are real files under ``hw/rtl``; per node, a wrapper is rendered from a typed
parameter object (``layers/``) together with its memory images; ``stitch`` connects the nodes
through FIFOs into one top with one AXI-stream input and one output.
"""
