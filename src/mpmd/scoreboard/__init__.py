"""Scoreboard: fixed binary layout in shared memory (see layout.py, board.py)."""

from mpmd.scoreboard.board import Scoreboard, WorkerSlot
from mpmd.scoreboard.layout import STATUS_LETTERS, Status

__all__ = ["Scoreboard", "WorkerSlot", "Status", "STATUS_LETTERS"]
