"""Architecture decisions: what the hardware is, decided once for every stage that needs it.

The RTL generators (:mod:`bireal_fpga.rtl.layers`) and the cost model the folding is priced by
(:mod:`bireal_fpga.synth.cost_model`) both ask these modules, so the folding is priced for the
hardware the generators emit:

- :mod:`.ops`: the layer types the project implements and the one ``_hls``/``_rtl`` stripper;
- :mod:`.memory`: which memory resource every memory gets (one ladder for ``auto``, FINN's for
  FIFOs), the style codes the templates use, and what a memory of each style costs;
- :mod:`.widths`: the fewest bits that hold an integer range;
- :mod:`.affine`: an MVAU's accumulator range and its activation as an exact affine map;
- :mod:`.constants`: how a constant added to a stream is stored (its repeating period, or by
  border class: a zero-padded binary conv's popcount correction);
- :mod:`.images`: the one ``$readmemh`` memory-image writer;
- :mod:`.streams`: AXI-stream words as FINN packs them;
- :mod:`.resources`: FPGA resources, their sums and the fits verdict.

Below the generators and the cost model, above only :mod:`bireal_fpga.errors`: nothing here
imports FINN, qonnx or torch (a board-side driver can use :mod:`.streams` with numpy alone).
"""
