"""Pure analyses of a ``Trace`` (numpy/pandas only; no model, no training code).

One concept per module:

* ``fixed_points``: relative change per step, convergence step, distance to the end point
* ``jumps``: critical step and jump statistic of the error curve (grokking-style flips)
* ``alignment``: cosine / linear CKA between slow and fast states per step
* ``gates``: HRM-LM gate and fusion statistics (the seed-003 table)
* ``sudoku_conflicts``: Sudoku constraint violations of decoded answers
* ``attention``: Sudoku row/column/box attention mass per head and step (traces recorded with attention)
"""

from .alignment import alignment_by_phase, hl_alignment, linear_cka
from .fixed_points import convergence, distance_to_final, relative_changes
from .gates import GateStats, gate_statistics
from .jumps import critical_step_histogram, critical_steps, error_curves, jump_distribution, jump_statistic
from .sudoku_conflicts import sudoku_conflicts

__all__ = [
    "alignment_by_phase", "hl_alignment", "linear_cka", "convergence", "distance_to_final", "relative_changes",
    "GateStats", "gate_statistics", "critical_step_histogram", "critical_steps", "error_curves",
    "jump_distribution", "jump_statistic", "sudoku_conflicts",
]
