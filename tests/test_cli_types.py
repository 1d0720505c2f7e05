"""The bounded argparse types refuse what they promise to refuse, with the option named, in one line."""

import argparse

import pytest

from common.cli_format import Parser, UsageError
from common.cli_types import (bounded_int, finite_float, float_list, int_list, nonneg_int, open_probability,
                              positive_float, positive_int, probability)


def _parser(kind):
    p = Parser(prog="t")
    p.add_argument("--x", type=kind)
    p.add_argument("--puzzle-file")
    return p


@pytest.mark.parametrize("kind,good,expected", [
    (positive_int, "3", 3), (nonneg_int, "0", 0), (probability, "1", 1.0), (finite_float, "-2.5", -2.5),
    (positive_float, "1e-3", 1e-3), (open_probability, "0.95", 0.95), (int_list(), "0,2,5-7", [0, 2, 5, 6, 7]),
    (float_list(), "0.5,1,2", [0.5, 1.0, 2.0]), (bounded_int(2, 8), "8", 8),
])
def test_accepts(kind, good, expected):
    assert _parser(kind).parse_args(["--x", good]).x == expected


@pytest.mark.parametrize("kind,bad", [
    (positive_int, "0"), (positive_int, "-1"), (positive_int, "1e3"), (positive_int, "2.0"), (positive_int, "x"),
    (positive_int, str(10**30)), (nonneg_int, "-1"), (probability, "1.5"), (probability, "nan"),
    (finite_float, "inf"), (finite_float, "-inf"), (positive_float, "0"), (open_probability, "1"),
    (int_list(), "3-1"), (int_list(), "1,,2"), (int_list(), "0-999999999"), (float_list(), "1,nan"),
    (bounded_int(2, 8), "9"), (bounded_int(2, 8), "1"),
])
def test_refuses_in_one_line_naming_the_option(kind, bad):
    with pytest.raises(UsageError) as e:
        _parser(kind).parse_args(["--x", bad])
    msg = str(e.value)
    assert "--x" in msg and "\n" not in msg


def test_no_abbreviations():
    with pytest.raises(UsageError, match="--puzzle-fil"):
        _parser(positive_int).parse_args(["--puzzle-fil", "a.sdm"])


def test_plain_argparse_would_have_accepted_the_abbreviation():
    """The control: without allow_abbrev=False argparse expands the prefix silently."""
    p = argparse.ArgumentParser()
    p.add_argument("--puzzle-file")
    assert p.parse_args(["--puzzle-fil", "a.sdm"]).puzzle_file == "a.sdm"
