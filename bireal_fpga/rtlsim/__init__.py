"""Verilator simulation of generated RTL: one node against FINN's python execution of the
same node, and the stitched accelerator against the PyTorch integer form."""
