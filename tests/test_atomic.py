"""linscale.atomic: a failed write leaves the old file as it was and no temporary file behind."""
import pytest

import json
import os
import stat
from pathlib import Path

from linscale.atomic import atomic_update, atomic_write, cannot_write_in, default_file_mode, write_json


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "table.csv"
    atomic_write(target, lambda tmp: open(tmp, "w").write("old\n"), mode=0o644)
    assert target.read_text() == "old\n" and target.stat().st_mode & 0o777 == 0o644

    def half_then_fail(tmp):
        open(tmp, "w").write("half")
        raise KeyboardInterrupt  # even an interrupt must not leave half a file

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half_then_fail)
    assert target.read_text() == "old\n"
    assert [p.name for p in target.parent.iterdir()] == ["table.csv"]


def test_a_new_file_gets_the_permissions_open_would_give_it(tmp_path):
    """mkstemp's 0600 left a sweep's results tables unreadable to the rest of a group."""
    plain = tmp_path / "plain.csv"
    plain.write_text("x\n")
    written = atomic_write(tmp_path / "atomic.csv", lambda tmp: open(tmp, "w").write("x\n"))
    assert written.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 != 0o600


def test_the_same_bytes_leave_the_file_and_its_time_as_they_were(tmp_path):
    """atomic_update: a re-run of a finished study rewrote its tables with the same bytes, and the book, up
    to date by its input files' times, re-executed most of its chapters."""
    import os

    target = atomic_write(tmp_path / "table.csv", lambda tmp: open(tmp, "w").write("a\n"))
    os.utime(target, ns=(1, 1))
    assert not atomic_update(target, lambda tmp: open(tmp, "w").write("a\n"))
    assert target.stat().st_mtime_ns == 1 and [p.name for p in tmp_path.iterdir()] == ["table.csv"]
    assert atomic_update(target, lambda tmp: open(tmp, "w").write("b\n"))
    assert target.read_text() == "b\n" and target.stat().st_mtime_ns != 1
    assert atomic_update(tmp_path / "new.csv", lambda tmp: open(tmp, "w").write("b\n"))  # a new file is written
    os.utime(target, ns=(1, 1))
    atomic_write(target, lambda tmp: open(tmp, "w").write("b\n"))  # atomic_write always writes
    assert target.stat().st_mtime_ns != 1


def test_json_is_written_whole_with_its_options_and_kept_when_unchanged(tmp_path):
    """One writer for the study's JSON files: its text (a final newline, the caller's indent and key
    order, paths as text), its mode, and a file left with its time when the text would not change."""
    target = tmp_path / "sub" / "settings.json"
    value = {"b": 1, "a": Path("runs/x")}
    assert write_json(target, value, sort_keys=True, mode=0o644) == target
    assert target.read_text() == '{\n "a": "runs/x",\n "b": 1\n}\n' and target.stat().st_mode & 0o777 == 0o644
    os.utime(target, (1, 1))
    write_json(target, value, sort_keys=True, keep_same=True)
    assert target.stat().st_mtime == 1
    write_json(target, {"b": 2}, indent=2, keep_same=True)
    assert json.loads(target.read_text()) == {"b": 2} and target.read_text() == '{\n  "b": 2\n}\n'
    with pytest.raises(TypeError):  # without a default, what JSON cannot hold fails before any write
        write_json(target, {"a": object()}, default=None)
    assert json.loads(target.read_text()) == {"b": 2} and [p.name for p in target.parent.iterdir()] == ["settings.json"]


def test_the_asked_mode_wins_over_the_umasks(tmp_path):
    """``mode`` is the file's, whatever the umask would give: checked with a mode the umask does not give,
    since with the usual umask 022 a mode passed over (0644) looked the same as one kept."""
    mode = 0o640 if default_file_mode() != 0o640 else 0o600
    assert stat.S_IMODE(atomic_write(tmp_path / "a.csv", lambda tmp: open(tmp, "w").write("x\n"), mode=mode)
                        .stat().st_mode) == mode
    assert stat.S_IMODE(write_json(tmp_path / "a.json", {"a": 1}, mode=mode).stat().st_mode) == mode
    assert atomic_update(tmp_path / "b.csv", lambda tmp: open(tmp, "w").write("x\n"), mode=mode)
    assert stat.S_IMODE((tmp_path / "b.csv").stat().st_mode) == mode


def test_json_keeps_the_callers_key_order_unless_asked_to_sort(tmp_path):
    assert list(json.loads(write_json(tmp_path / "a.json", {"b": 1, "a": 2}).read_text())) == ["b", "a"]


def test_without_proc_the_umask_is_read_and_left_as_it_was(monkeypatch):
    """Off Linux the umask is set and put back at once: the mode is 0666 less it, and the process keeps it."""
    def no_proc(self, *args, **kwargs):
        raise OSError("no /proc here")

    monkeypatch.setattr(Path, "read_text", no_proc)
    old = os.umask(0o027)
    try:
        assert default_file_mode.__wrapped__() == 0o640
        assert os.umask(0o027) == 0o027  # still the process's umask after the reading
    finally:
        os.umask(old)


def test_a_folder_one_cannot_write_in_is_named_with_the_reason_and_nothing_is_left(tmp_path):
    """cannot_write_in probes by creating and removing: None where it can (nothing left behind), else why."""
    assert cannot_write_in(tmp_path) is None and list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("")
    assert cannot_write_in(tmp_path / "file") == "creating a file there fails: Not a directory"
    assert cannot_write_in(tmp_path / "nosuch") == "creating a file there fails: No such file or directory"
