"""Fixtures for the tests of every folder: the dtypes and devices they run on
(the helpers behind them are in helpers.py)."""

import pytest

from helpers import DEVICES, DTYPES


@pytest.fixture(params=DTYPES, ids=lambda d: str(d).removeprefix("torch."))
def dtype(request):
    return request.param


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param
