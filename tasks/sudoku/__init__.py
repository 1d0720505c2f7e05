"""Sudoku: grid codec and files (``grid``), solver, generator, augmentations, dataset build; CLI in ``__main__``."""
