"""The ``bireal-fpga`` command line.

Every command validates all of its inputs before it writes anything; a problem ends the
command with one line on stderr (``error: ...``) and exit status 2.
"""

from __future__ import annotations

import sys

import click

from bireal_fpga.errors import BiRealError


class _Cli(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BiRealError as exc:
            # an error that carries a log's tail (a failed Vivado run) prints the tail first,
            # so the last line is still the one error line
            summary = getattr(exc, "summary", None)
            if summary is not None:
                for line in getattr(exc, "tail", []):
                    click.echo(f"  | {line}", err=True)
                click.echo(f"error: {summary}", err=True)
            else:
                click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_Cli)
@click.version_option(package_name="bireal-fpga")
def main() -> None:
    """Bi-Real Net (1-bit CNN) to a bit-exact FPGA dataflow accelerator."""


def _register() -> None:
    """The commands, grouped by what they work on (one module each)."""
    from bireal_fpga.cli import board_cmds, build_cmds, models_cmds, ship_cmds, train_cmds

    for module in (models_cmds, train_cmds, ship_cmds, build_cmds, board_cmds):
        for command in module.COMMANDS:
            main.add_command(command)


_register()

if __name__ == "__main__":  # pragma: no cover
    main()
