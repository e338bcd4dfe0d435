"""Clear a notebook's outputs, as it is committed: `make strip-notebook`.

    python tests/frontends/strip_notebook.py examples/lesson4.ipynb

A stripped notebook has, in every code cell, no outputs, no execution count
and no execution timing, and no saved widget state; tests/frontends/test_notebook.py
fails on a committed notebook that is not.
"""

import sys

import nbformat


def unstripped(nb):
    """What keeps ``nb`` from being stripped, as a list of strings (empty: stripped)."""
    found = [f"code cell {i}: {what}" for i, cell in enumerate(nb.cells)
             if cell.cell_type == "code"
             for what, present in [("outputs", bool(cell.outputs)),
                                   ("an execution count", cell.execution_count is not None),
                                   ("execution timing", "execution" in cell.metadata)]
             if present]
    if "widgets" in nb.metadata:
        found.append("saved widget state (metadata.widgets)")
    return found


def strip(nb):
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    return nb


def main(paths):
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if unstripped(nb):
            nbformat.write(strip(nb), path)
            print(f"{path}: stripped")


if __name__ == "__main__":
    main(sys.argv[1:])
