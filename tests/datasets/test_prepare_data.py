"""``tools/prepare_data.py`` and its package logic (``pyanomaly.datasets.summary``), and the configs."""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from fake_layouts import make_shanghaitech, make_ucsd_frames, write_gt_mat

from pyanomaly.config import load_cfg
from pyanomaly.datasets.summary import main
from pyanomaly.registry import DATASETS, registered_names

REPO = Path(__file__).resolve().parents[2]


def _cfg(tmp_path: Path, name: str, root: Path) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"DATASET:\n  NAME: {name}\n  ROOT: {root}\n  IMAGE_SIZE: [8, 8]\n"
                    f"  CLIP_LENGTH: 2\n  CACHE_DIR: {tmp_path / 'cache'}\n")
    return path


def _run(*args, **kwargs) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = main(*args, out=out, err=err, **kwargs)
    return rc, out.getvalue(), err.getvalue()


def test_summary_table(tmp_path):
    make_ucsd_frames(tmp_path / "ped2")
    rc, out, err = _run(_cfg(tmp_path, "ped2", tmp_path / "ped2"), per_video=True)
    assert rc == 0, err
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("split"))
    assert "resolution (original)" in lines[header] and "fps" in lines[header]
    assert lines[header + 1].split()[:4] == ["training", "2", "18", "-"]
    assert lines[header + 2].split()[:5] == ["testing", "3", "21", "10", "(47.6%)"]
    assert "24x16" in lines[header + 2] and "8x8x1" in lines[header + 2]
    assert "testing per video:" in out
    per_video = lines[lines.index("testing per video:") + 1:]
    assert per_video[0].split() == ["video", "frames", "claimed", "anomalous", "media"]
    assert [row.split()[:3] for row in per_video[1:4]] == [["01", "8", "8"], ["02", "6", "6"], ["03", "7", "7"]]
    assert all(row.split()[-1] == "ok" for row in per_video[1:4])
    # Ped2 knows the official counts and says where a copy differs
    assert "note: testing: 3 videos, the official release has 12" in out


def test_summary_groups_and_fps(tmp_path):
    make_shanghaitech(tmp_path / "sht")
    rc, out, err = _run(_cfg(tmp_path, "shanghaitech", tmp_path / "sht"))
    assert rc == 0, err
    train = next(line for line in out.splitlines() if line.startswith("training"))
    assert train.split()[-2:] == ["25", "8x8x1"]  # fps of the .avi files
    assert "testing by group:" in out and any(line.split()[:2] == ["02", "1"] for line in out.splitlines())


def test_overrides_and_problems_are_one_line(tmp_path):
    make_ucsd_frames(tmp_path / "ped2")
    cfg = _cfg(tmp_path, "ped2", tmp_path / "elsewhere")
    rc, out, err = _run(cfg, ["DATASET.ROOT", str(tmp_path / "ped2")])
    assert rc == 0, err
    write_gt_mat(tmp_path / "ped2" / "ped2.mat", [[(1, 99)], [], []])
    rc, out, err = _run(cfg, ["DATASET.ROOT", str(tmp_path / "ped2")])
    assert rc == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: video '01'") and "8 frames" in err
    rc, _, err = _run(cfg, ["DATASET.NAME", "ped3"])
    assert rc == 1 and "Did you mean 'ped2'?" in err and err.count("\n") == 1
    rc, _, err = _run(cfg, ["DATASET.NOPE", "1"])
    assert rc == 1 and "DATASET.NOPE" in err


def test_configs_name_registered_datasets():
    names = registered_names(DATASETS)
    for name in ("ped1", "ped2", "avenue", "shanghaitech", "folder", "synthetic"):
        assert name in names
    for path in sorted((REPO / "configs" / "datasets").glob("*.yaml")):
        cfg = load_cfg(path)
        assert cfg.DATASET.NAME == path.stem and cfg.DATASET.NAME in names


def test_tool_help_and_error_exit(tmp_path):
    tool = str(REPO / "tools" / "prepare_data.py")
    done = subprocess.run([sys.executable, tool, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--cfg" in done.stdout and "KEY VALUE" in done.stdout
    make_ucsd_frames(tmp_path / "ped2")
    (tmp_path / "ped2" / "ped2.mat").unlink()
    done = subprocess.run([sys.executable, tool, "--cfg", str(_cfg(tmp_path, "ped2", tmp_path / "ped2"))],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: ped2: ground truth")


def test_training_split_is_checked_as_training_reads_it(tmp_path):
    """Under TRAIN.MAX_FRAMES the training split is decoded, cached and checked as a step-trained
    run reads it (the first frames of each video), and the report says so; 0 checks every frame."""
    from fake_layouts import write_avi
    make_shanghaitech(tmp_path / "sht", train_length=30)
    cfg = _cfg(tmp_path, "shanghaitech", tmp_path / "sht")
    rc, out, err = _run(cfg, ["TRAIN.MAX_FRAMES", "20"], per_video=True)
    assert rc == 0, err
    assert next(line for line in out.splitlines() if line.startswith("training")).split()[:3] == ["training", "2", "20"]
    assert ("note: training: the first 10 frames of each video were read and checked (20 of 60 frames claimed), "
            "as a step-trained method reads them under TRAIN.MAX_FRAMES") in out
    rows = out.splitlines()[out.splitlines().index("training per video:") + 2:][:2]
    assert [r.split() for r in rows] == [["01_001", "10", "30", "-", "ok"], ["02_001", "10", "30", "-", "ok"]]

    # a training video cut short after the frames training reads is not training's problem
    write_avi(tmp_path / "sht" / "training" / "videos" / "02_001.avi", 30)
    path = tmp_path / "sht" / "training" / "videos" / "02_001.avi"
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.6)])
    rc, out, err = _run(cfg, ["TRAIN.MAX_FRAMES", "20", "DATASET.CACHE_DIR", str(tmp_path / "cache2")])
    assert rc == 0, err
    rc, out, err = _run(cfg, ["TRAIN.MAX_FRAMES", "0", "DATASET.CACHE_DIR", str(tmp_path / "cache3")])
    assert rc == 1 and "truncated: training video '02_001'" in out, out + err
    assert "were read and checked" not in out
