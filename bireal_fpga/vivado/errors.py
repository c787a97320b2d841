"""The Vivado back end's errors."""

from __future__ import annotations

from pathlib import Path

from bireal_fpga.errors import BiRealError


class VivadoError(BiRealError):
    """The Vivado project cannot be prepared, or a Vivado run failed (non-zero exit, negative
    slack, a missing ``.bit`` or ``.hwh``, a report that cannot be read).

    The message's first line is the reason and the file to read (report or log); a failed run
    appends the log's last lines. ``summary`` is that first line alone.
    """

    def __init__(
        self,
        reason: str,
        *,
        path: Path | None = None,
        log_path: Path | None = None,
        tail: list[str] | None = None,
    ) -> None:
        self.reason = reason
        self.path = path
        self.log_path = log_path
        self.tail = list(tail or [])
        first = reason if path is None else f"{reason} (see {path})"
        self.summary = first
        text = first
        if self.tail:
            text += f"\n--- the last {len(self.tail)} lines of {log_path} ---\n" + "\n".join(
                self.tail
            )
        super().__init__(text)
