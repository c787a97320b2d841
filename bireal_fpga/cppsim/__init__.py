"""cppsim: FINN's HLS layer library (finn-hlslib) compiled with g++, without Vitis.

finn-plus generates the C simulation source of each HLS node (``code_generation_cppsim``);
:mod:`.compile` compiles it with the project's own g++ command (the C-simulation headers of
hls4ml, this project's stand-ins for the Vitis-only headers, no Xilinx libraries), cached by
content; :mod:`.node` runs one node through FINN's own ``exec_mode="cppsim"``.
"""
