import errno
import json

import pytest

from graft import io
from graft.errors import GraftError


def test_atomic_write_replaces_content(tmp_path):
    path = tmp_path / "sub" / "a.txt"
    io.write_text(path, "one")
    io.write_text(path, "two")
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["a.txt"]


def test_failed_write_keeps_previous_content_and_no_temp(tmp_path):
    path = tmp_path / "a.json"
    io.write_json(path, {"v": 1})
    with pytest.raises(RuntimeError), io.atomic_write(path) as f:
        f.write(b"partial")
        raise RuntimeError("crash mid-write")
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_disk_full_is_a_clear_error(tmp_path):
    path = tmp_path / "a.bin"
    io.write_bytes(path, b"old")
    with (
        pytest.raises(io.DiskFullError, match="disk full.*earlier outputs are intact"),
        io.atomic_write(path) as f,
    ):
        f.write(b"x")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert path.read_bytes() == b"old"


def test_atomic_path_for_libraries(tmp_path):
    path = tmp_path / "w.bin"
    with io.atomic_path(path) as tmp:
        tmp.write_bytes(b"abc")
        assert not path.exists()
    assert path.read_bytes() == b"abc"


def test_read_json_names_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"a": ')
    with pytest.raises(GraftError, match="broken.json is not valid JSON"):
        io.read_json(path)


def test_sha256_file(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"abc")
    assert (
        io.sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_read_json_rejects_non_utf8(tmp_path):
    path = tmp_path / "binary.json"
    path.write_bytes(b"\x80\x03}q\x00.")  # a pickle header, not UTF-8
    with pytest.raises(GraftError, match="binary.json is not valid JSON"):
        io.read_json(path)


def test_atomic_path_disk_full_is_a_clear_error(tmp_path):
    path = tmp_path / "shard.bin"
    with pytest.raises(io.DiskFullError, match="shard.bin"), io.atomic_path(path):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_outputs_get_the_usual_permissions_not_owner_only(tmp_path):
    import os
    import stat

    from graft.io import write_text

    umask = os.umask(0o022)
    os.umask(umask)
    write_text(tmp_path / "a.txt", "x")
    # 0644 under the usual umask 022 (mkstemp alone would leave 0600: unreadable by the team)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o666 & ~umask
