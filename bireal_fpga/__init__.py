"""bireal-fpga: Bi-Real Net to a bit-exact FPGA dataflow accelerator.

Pipeline, stage by stage (one subpackage each):

- ``spec``      typed description of a Bi-Real-shaped network, presets
- ``quant``     ApproxSign, magnitude-aware binary weights, fixed-point residual quantizers
- ``models``    the Brevitas/PyTorch Bi-Real model built from a spec
- ``data``      dataset readers (CIFAR-10 batches, ImageFolder, JPEG npz, idx)
- ``train``     the paper's two-stage training algorithm, checkpoints, DDP
- ``integer``   the model's integer inference form (integer weights + thresholds)
- ``golden``    independent numpy integer reference (bit-packed XNOR-popcount)
- ``cli``       the ``bireal-fpga`` command
"""

__version__ = "0.1.0"
