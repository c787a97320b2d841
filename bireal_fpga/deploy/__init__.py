"""``bireal-fpga deploy BUILD --out DIR``: a folder to copy to the board (:mod:`.package`)."""

from bireal_fpga.deploy.package import DeployError, deploy

__all__ = ["DeployError", "deploy"]
