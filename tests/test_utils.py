"""pyanomaly.utils: atomic folders, the thread count; the commands' OpenMP wait policy."""
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


def test_threads_follow_the_config_then_the_environment_then_the_usable_cores(monkeypatch):
    from pyanomaly.utils import choose_threads
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert choose_threads(3) == (3, "SYSTEM.NUM_THREADS")
    assert choose_threads(0) == (4, "4 usable core(s)")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")  # torchrun: three processes on this machine
    assert choose_threads(0) == (1, "4 usable core(s) shared by 3 processes")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the environment's word is kept
    assert choose_threads(0) is None and choose_threads(5)[0] == 5


@pytest.mark.parametrize("given, seen", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_every_command_lets_idle_openmp_threads_sleep_unless_told_otherwise(given, seen):
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    code = ("import os; from pyanomaly.commands.common import run_cli; "
            "run_cli(lambda: print(os.environ.get('OMP_WAIT_POLICY')))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == seen, out.stderr
