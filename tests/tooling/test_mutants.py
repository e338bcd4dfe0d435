"""tests/tooling/mutants.py, the broken libraries the tests are run against:
absent from an ordinary run, and able to fail a test that checks what they
break."""

import os
import subprocess
import sys
from pathlib import Path

import relu_ext

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "tooling"))
import mutants  # noqa: E402  (a plain module here: importing it patches nothing)

sys.path.remove(str(TESTS / "tooling"))


def test_an_ordinary_run_loads_no_mutant(pytestconfig):
    assert not pytestconfig.pluginmanager.has_plugin("mutants")
    # A mutant wraps what it breaks (functools.wraps leaves __wrapped__).
    for function in (relu_ext.relu_sum, relu_ext.fit_curve, relu_ext.fit,
                     relu_ext.nn._module.relu_sum):
        assert not hasattr(function, "__wrapped__"), function


def run_one(test, mutant, cwd):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS / "tooling"), str(TESTS)]))
    return subprocess.run([sys.executable, "-m", "pytest", str(TESTS / test), "-p", "mutants",
                           "--mutant", mutant, "-q", "-p", "no:cacheprovider"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_a_mutant_fails_a_test_of_what_it_breaks(tmp_path):
    # One case (two interpreters, seconds each); mutants.py runs them all.
    test = "ops/test_semantics.py::test_relu_has_zero_gradient_at_the_kink"
    mutant = "ops_relu_sum_dm_zero"
    clean = run_one(test, "none", tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    broken = run_one(test, mutant, tmp_path)
    assert broken.returncode == 1 and "1 failed" in broken.stdout, broken.stdout + broken.stderr


def test_every_mutant_has_a_folder_and_says_what_it_breaks():
    assert set(mutants.MUTANTS) == {"ops", "nn", "train", "curve", "frontends", "tooling"}
    for folder, found in mutants.MUTANTS.items():
        assert (TESTS / folder).is_dir(), folder
        assert all(m.__doc__ for m in found), folder
