"""linscale.lazy: package attributes imported on first use (linscale.train and linscale.data serve their names
through it, so that reading a preset or a results table imports neither Lightning nor torch)."""
import pytest

import linscale
import linscale.train
from linscale.lazy import lazy_exports


def test_a_name_is_imported_from_its_submodule_on_first_use_and_kept():
    from linscale import atomic

    namespace = {}
    getattr_, dir_ = lazy_exports("linscale", namespace, {"atomic": ("atomic_write",), "config": ("ConfigError",)})
    assert getattr_("atomic_write") is atomic.atomic_write
    assert namespace == {"atomic_write": atomic.atomic_write}  # looked up once: the package keeps it
    assert dir_() == ["ConfigError", "atomic_write"]  # listed before they are imported too


def test_an_unknown_name_is_an_attribute_error_naming_the_package():
    """hasattr, getattr with a default and `from linscale.train import X` rely on AttributeError for a name the
    package does not have: not a None that reads as the name's value."""
    getattr_, _ = lazy_exports("linscale", {}, {"atomic": ("atomic_write",)})
    with pytest.raises(AttributeError, match=r"^module 'linscale' has no attribute 'atomic_writer'$"):
        getattr_("atomic_writer")
    assert not hasattr(linscale.train, "train_runs") and getattr(linscale.train, "train_runs", 7) == 7
    with pytest.raises(ImportError, match="train_runs"):
        from linscale.train import train_runs  # noqa: F401
    assert {"train_run", "run_sweep", "read_results"} <= set(dir(linscale.train))
