"""linscale.train.code_paths without starting a process: which CPUs are pinned, which variables a pin sets, and
that the environment's own settings win. What a pinned process then runs is measured in test_train_sweep.py
(on this machine only, whose CPU it cannot choose)."""
from __future__ import annotations

import types

import pytest

from linscale.train import code_paths


@pytest.fixture
def cpu(monkeypatch):
    """Pretend to be an x86 CPU with the given flags and numpy release."""
    def pretend(flags, machine="x86_64", numpy="2.4"):
        monkeypatch.setattr(code_paths.platform, "machine", lambda: machine)
        monkeypatch.setattr(code_paths, "_cpu_flags", lambda: set(flags))
        monkeypatch.setattr(code_paths, "_numpy_release", lambda: numpy)
    return pretend


def test_only_an_x86_cpu_with_avx2_and_fma_is_pinned(cpu):
    cpu({"sse4_2", "avx2", "fma"})
    assert code_paths._has_avx2_fma()
    for flags, machine in (({"avx2"}, "x86_64"), ({"fma"}, "x86_64"), ({"avx2", "fma"}, "aarch64")):
        cpu(flags, machine)
        assert not code_paths._has_avx2_fma(), (flags, machine)
        assert code_paths.numerics_pins() == {} and code_paths.pinned_code_paths() == {}  # no MKL branch alone


def test_the_pins_are_atens_avx2_openblass_haswell_numpys_avx2_level_and_for_training_mkls_avx2_branch(cpu):
    cpu({"avx2", "fma"})
    expected = {"ATEN_CPU_CAPABILITY": "avx2", "OPENBLAS_CORETYPE": "Haswell",
                "NPY_DISABLE_CPU_FEATURES": code_paths.NUMPY_ABOVE_AVX2["2.4"]}
    assert code_paths.numerics_pins() == expected
    assert code_paths.pinned_code_paths() == {**expected, "MKL_CBWR": "AVX2"}
    cpu({"avx2", "fma"}, numpy="9.9")  # a numpy whose target names are not known: left unpinned, not misnamed
    assert "NPY_DISABLE_CPU_FEATURES" not in code_paths.numerics_pins()


def test_a_training_environment_adds_the_thread_counts_and_the_pins_the_readers_own_settings_win(cpu):
    cpu({"avx2", "fma"})
    env = code_paths.training_environment(2, {"MKL_CBWR": "COMPATIBLE", "PATH": "/bin"})
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "2"
    assert env["MKL_CBWR"] == "COMPATIBLE" and env["PATH"] == "/bin" and env["ATEN_CPU_CAPABILITY"] == "avx2"
    assert "OMP_NUM_THREADS" not in code_paths.training_environment(None, {})


def test_this_process_is_pinned_only_before_torch_is_imported_and_keeps_its_own_settings(cpu, monkeypatch):
    cpu({"avx2", "fma"})
    environ = {"ATEN_CPU_CAPABILITY": "default"}
    monkeypatch.setattr(code_paths, "os", types.SimpleNamespace(environ=environ))  # this process's, untouched
    code_paths.pin_numerics()
    assert environ["ATEN_CPU_CAPABILITY"] == "default" and environ["OPENBLAS_CORETYPE"] == "Haswell"
    assert "MKL_CBWR" not in environ  # evaluation runs MKL's default branch
    assert not code_paths.pin_this_process(3)  # torch is imported here: too late to pin
    assert "MKL_CBWR" not in environ and "OMP_NUM_THREADS" not in environ
    monkeypatch.delitem(code_paths.sys.modules, "torch")
    assert code_paths.pin_this_process(3)
    assert environ["MKL_CBWR"] == "AVX2" and environ["OMP_NUM_THREADS"] == "3"
    assert environ["ATEN_CPU_CAPABILITY"] == "default"
