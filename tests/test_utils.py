"""pyanomaly.utils.atomic_folder: a generated folder appears complete or not at all."""
import pytest

from pyanomaly.utils import atomic_folder


def test_folder_appears_complete_after_the_block(tmp_path):
    out = tmp_path / "gen"
    with atomic_folder(out, "done.txt") as tmp:
        (tmp / "a").mkdir()
        (tmp / "done.txt").write_text("ok")
        assert not out.exists()  # nothing visible while it is being written
    assert (out / "done.txt").read_text() == "ok" and (out / "a").is_dir()
    assert [p.name for p in tmp_path.iterdir()] == ["gen"]


def test_a_failure_leaves_nothing_behind(tmp_path):
    out = tmp_path / "gen"
    with pytest.raises(RuntimeError):
        with atomic_folder(out, "done.txt") as tmp:
            (tmp / "half").write_text("x")
            raise RuntimeError("generator failed")
    assert list(tmp_path.iterdir()) == []


def test_an_empty_destination_is_replaced_and_a_full_one_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with atomic_folder(tmp_path / "empty", "done.txt") as tmp:
        (tmp / "done.txt").write_text("ok")
    assert (tmp_path / "empty" / "done.txt").is_file()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="full"):
        with atomic_folder(tmp_path / "full", "done.txt") as tmp:
            (tmp / "done.txt").write_text("new")
    assert (tmp_path / "full" / "mine.txt").read_text() == "keep" and not (tmp_path / "full" / "done.txt").exists()
