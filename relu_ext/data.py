"""Data to fit: the lesson's noisy quadratic, other built-in targets, CSV files.

The lesson (fast.ai lesson 4) samples ``x = linspace(-2, 2, 20)`` and
``y = 3x² + 2x + 1`` through its ``add_noise(y, mult=0.15, add=1.5)``: a
multiplicative and an additive normal noise. The same recipe is written here
with a seeded ``torch.Generator`` instead of numpy's global state, so a seed
gives the same points on every machine and nothing else's randomness shifts.
"""

import csv
import math
from dataclasses import dataclass
from typing import Callable, Tuple

import torch


class DataError(ValueError):
    """Data that cannot be fitted: a missing or malformed file, no rows."""


@dataclass(frozen=True)
class Target:
    """A known function to sample, with the lesson's kind of noise."""

    name: str
    formula: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    domain: Tuple[float, float]
    noise_mult: float
    noise_add: float
    # A sum of ReLUs with every a_k = 1 is convex; anything else needs output weights.
    convex: bool


TARGETS = {
    "quadratic": Target("quadratic", "3x² + 2x + 1", lambda x: 3 * x**2 + 2 * x + 1,
                        (-2.0, 2.0), noise_mult=0.15, noise_add=1.5, convex=True),
    # A peak and a trough on the lesson's interval. Smaller additive noise: the
    # lesson's 1.5 would swamp a curve of amplitude 2.
    "sin": Target("sin", "2·sin(2x)", lambda x: 2 * torch.sin(2 * x),
                  (-2.0, 2.0), noise_mult=0.15, noise_add=0.3, convex=False),
}


def add_noise(y, mult, add, generator):
    """The lesson's ``y·(1 + N(0, mult²)) + N(0, add²)``, drawn from ``generator``."""
    def normal(scale):
        return torch.randn(y.shape, generator=generator, dtype=y.dtype) * scale

    return y * (1 + normal(mult)) + normal(add)


def sample_target(target, points=20, seed=42, dtype=torch.float32):
    """``points`` evenly spaced x over the target's domain and noisy y, as
    column tensors of shape (points, 1) like the lesson's ``x[:, None]``.

    ``target`` is a name from ``TARGETS`` or a ``Target``.
    """
    if isinstance(target, str):
        if target not in TARGETS:
            raise DataError(
                f"unknown target {target!r}; expected one of {', '.join(TARGETS)}"
            )
        target = TARGETS[target]
    if not isinstance(points, int) or points < 1:
        raise DataError(f"points must be a positive int, but got {points!r}")
    generator = torch.Generator().manual_seed(seed)
    x = torch.linspace(*target.domain, steps=points, dtype=dtype)[:, None]
    y = add_noise(target.fn(x), target.noise_mult, target.noise_add, generator)
    return x, y


def lesson_data(seed=42):
    """The lesson's 20 noisy points of ``3x² + 2x + 1`` on [-2, 2]."""
    return sample_target("quadratic", points=20, seed=seed)


def load_csv(path, dtype=torch.float32, weights_column=None):
    """Two numeric columns x, y from a CSV file, with or without a header row;
    with ``weights_column`` (a header name, or a column number counted from
    1), also that column's weights.

    Returns column tensors of shape (N, 1): x, y, and with weights_column
    the weights. Raises DataError naming the file and line for a missing file,
    a row with another number of columns (two without weights), a value that
    is not a finite number, a negative weight, an unknown weights column, or a
    file without data rows.
    """
    try:
        with open(path, newline="") as f:
            rows = [(i, row) for i, row in enumerate(csv.reader(f), start=1)
                    if any(cell.strip() for cell in row)]
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a CSV file") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None

    header = rows[0][1] if rows and _is_header(rows[0][1]) else None
    if header is not None:
        rows = rows[1:]
    if not rows:
        raise DataError(f"{path}: no data rows; expected two numeric columns x,y")
    if weights_column is None:
        width, columns = 2, (0, 1)
    else:
        width = len(header) if header is not None else len(rows[0][1])
        columns = (0, 1, _column_index(path, header, width, weights_column))

    values = []
    for line, row in rows:
        if len(row) != width:
            expected = "two columns x,y" if weights_column is None else f"{width} columns"
            raise DataError(f"{path}, line {line}: expected {expected}, but got {len(row)}")
        values.append([_parse_number(path, line, row[c]) for c in columns])
        if weights_column is not None and values[-1][2] < 0:
            raise DataError(f"{path}, line {line}: the weight {row[columns[2]].strip()} must "
                            f"be >= 0")
    table = torch.tensor(values, dtype=dtype)
    return tuple(table[:, i:i + 1] for i in range(len(columns)))


def _column_index(path, header, width, column):
    """The 0-based index of the weights column, given by name or number from 1."""
    if isinstance(column, str) and not column.strip().isdigit():
        names = [name.strip() for name in header] if header is not None else []
        if column.strip() not in names:
            raise DataError(f"{path}: no column named {column!r} for the weights; the header "
                            f"has {', '.join(map(repr, names)) or 'no names'}")
        index = names.index(column.strip())
    else:
        index = int(column) - 1
        if not 0 <= index < width:
            raise DataError(f"{path}: the weights column must be a number from 1 to {width}, "
                            f"but got {column}")
    if index < 2:
        raise DataError(f"{path}: the weights column must not be x's or y's (columns 1 and "
                        f"2), but got column {index + 1}")
    return index


def _is_header(row):
    # A header such as "x,y" has no number in it; a first row with some numbers
    # is data, so a typo there is reported rather than skipped.
    for cell in row:
        try:
            float(cell)
            return False
        except ValueError:
            pass
    return True


def _parse_number(path, line, cell):
    try:
        value = float(cell)
    except ValueError:
        raise DataError(f"{path}, line {line}: {cell.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise DataError(f"{path}, line {line}: {cell.strip()!r} is not a finite number")
    return value
