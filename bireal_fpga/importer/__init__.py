"""Models from outside: a QONNX file exported by Brevitas (``brevitas.export.export_qonnx``)
read into the project's integer inference form (:class:`~bireal_fpga.integer.params.IntegerNet`)
with exact thresholds, and executed as the user gave it (the ``source`` verify stage)."""
