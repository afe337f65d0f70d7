"""Faults a new user hit with run folders (issue 15), each tried as they tried it: a
failed or killed `pgen train`, two trains in one folder, bad resumes, unwritable
folders, interrupted runs."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import pgen
from pgen.cli import main

TINY = ["--data", "digits", "--hidden", "16", "--latent-dim", "2", "--batch-size", "256", "--no-progress"]


def _interrupt_a_long_run(run, signum) -> tuple[int, str]:
    """Start a long `pgen train` into ``run`` in another process, send it ``signum`` once
    it has written a checkpoint; its exit code and standard error."""
    argv = ["train", "vae", "--data", "digits", "--hidden", "16", "--batch-size", "32", "--epochs", "100000"]
    argv += ["--no-progress", "--out", str(run)]
    code = f"from pgen.cli import main; import sys; sys.exit(main({argv!r}))"
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signum)
    return proc.wait(), proc.stderr.read()


def _train(out, *extra):
    return main(["train", "vae", *TINY, "--out", str(out), *extra])


def test_a_failed_train_writes_nothing_and_the_corrected_command_works(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(run, "--lr", "-1", "--epochs", "1") == 2
    assert "lr must be > 0, got -1.0" in capsys.readouterr().err
    assert not (run / "config.json").exists()
    assert _train(run, "--epochs", "1") == 0  # not "already holds a run"
    assert (run / "model.pt").is_file()


def test_a_run_killed_before_its_first_checkpoint_blocks_nothing(tmp_path):
    run = tmp_path / "run"
    # a long run whose first checkpoint comes at its end, killed (SIGKILL) once it has
    # written its configuration: the folder holds config.json and no checkpoint
    code = (
        "from pgen.cli import main; main(['train', 'vae', '--data', 'digits', '--hidden', '16', "
        f"'--epochs', '100000', '--checkpoint-every', '100000', '--no-progress', '--out', {str(run)!r}])"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (run / "config.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.kill()
    proc.wait()
    assert (run / "config.json").exists() and not (run / "checkpoint.pt").exists()
    assert _train(run, "--epochs", "1") == 0  # a new run takes the folder over
    assert json.loads((run / "config.json").read_text())["fit"]["epochs"] == 1


def test_resume_of_a_run_without_checkpoint_starts_it_from_its_configuration(tmp_path):
    run = tmp_path / "run"
    assert _train(run, "--epochs", "1") == 0
    for name in ("checkpoint.pt", "model.pt"):
        (run / name).unlink()  # as if killed before the first checkpoint
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert json.loads((run / "history.json").read_text())["epoch"] == [1]


def _hold_lock(folder: Path):
    code = (
        "import sys, time; from pgen.io import FolderLock; "
        f"FolderLock({str(folder)!r}).acquire(); print('held', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_train_in_a_busy_folder_gets_a_clear_error(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    holder = _hold_lock(run)
    try:
        assert _train(run, "--epochs", "1") == 2
        assert "is in use by another pgen process" in capsys.readouterr().err
        assert not (run / "config.json").exists()
    finally:
        holder.kill()
        holder.wait()
    assert _train(run, "--epochs", "1") == 0


def test_two_trains_started_together_do_not_both_succeed(tmp_path):
    run = tmp_path / "run"
    argv = ["train", "vae", *TINY, "--epochs", "3", "--out", str(run)]
    code = f"import sys; from pgen.cli import main; sys.exit(main({argv!r}))"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    results = [(p.wait(), p.stderr.read()) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 2], results
    err = next(e for c, e in results if c == 2)
    assert "in use by another pgen process" in err or "already holds a run" in err
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["fit"]["epochs"] == 3 and pgen.models.load_model(run / "model.pt") is not None


def test_resume_checks_its_budget_before_writing(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(run, "--epochs", "2") == 0
    before = (run / "config.json").read_text()
    assert main(["train", "--resume", str(run), "--epochs", "0", "--no-progress"]) == 2
    assert "epochs must be an integer >= 1, got 0" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--epochs", "1", "--no-progress"]) == 2
    assert "has already trained 2 epochs" in capsys.readouterr().err
    assert (run / "config.json").read_text() == before  # nothing rewritten
    assert main(["train", "--resume", str(run), "--epochs", "3", "--no-progress"]) == 0
    assert json.loads((run / "history.json").read_text())["epoch"] == [1, 2, 3]


def test_resume_from_the_cli_as_users_type_it(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(run, "--epochs", "1") == 0
    assert main(["train", "vae", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0
    assert main(["train", "--resume", str(run), "--epochs", "3", "--lr", "1e-4", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--lr cannot change when resuming" in err and "invalid choice" not in err
    assert main(["train", "cvae", "--resume", str(run), "--epochs", "3", "--no-progress"]) == 2
    assert "holds a vae run, not cvae" in capsys.readouterr().err


def test_an_interrupted_run_says_how_to_continue_and_can_be_looked_at(tmp_path, capsys):
    run = tmp_path / "run"
    code_, err = _interrupt_a_long_run(run, signal.SIGINT)
    assert code_ == 130, err
    assert f"continue with `pgen train --resume {run}`" in err and "resume=True" not in err
    assert main(["sample", str(run), "-n", "4"]) == 2
    assert "--checkpoint" in capsys.readouterr().err
    assert main(["sample", str(run), "-n", "4", "--checkpoint"]) == 0
    assert np.load(run / "samples.npz")["samples"].shape == (4, 64)
    assert main(["evaluate", str(run), "--num-samples", "5", "--no-progress", "--checkpoint"]) == 0
    assert json.loads((run / "metrics.json").read_text())["from_checkpoint"] is True


def test_sigterm_behaves_like_ctrl_c(tmp_path):
    run = tmp_path / "run"
    code_, err = _interrupt_a_long_run(run, signal.SIGTERM)
    assert code_ == 128 + signal.SIGTERM, err
    assert "SIGTERM" in err and "Traceback" not in err
    step = pgen.io.load(run / "checkpoint.pt", kind="svi")["step"]
    assert step > 0 and not list(run.glob(".checkpoint.pt.*.tmp"))
    assert main(["train", "--resume", str(run), "--steps", str(step + 2), "--no-progress"]) == 0
    assert json.loads((run / "history.json").read_text())["step"][-1] == step + 2


def test_unwritable_folders_fail_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert _train(blocker / "run", "--epochs", "1") == 2
    assert "cannot be written" in capsys.readouterr().err
    if os.geteuid() != 0 and os.access("/proc", os.W_OK) is False:  # root writes anywhere else
        assert _train(Path("/proc/pgen-test-run"), "--epochs", "1") == 2
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").mkdir()  # a checkpoint path that is a folder
    assert _train(run, "--epochs", "1") == 2
    assert "checkpoint.pt" in capsys.readouterr().err


def test_evaluate_prints_what_it_computed_when_it_cannot_write(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert _train(run, "--epochs", "1") == 0
    capsys.readouterr()

    def full_disk(path, obj):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pgen.io, "write_json", full_disk)
    assert main(["evaluate", str(run), "--num-samples", "5", "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert "IS log-likelihood (K=5)" in out and "No space left on device" in err


def test_dynamic_binarization_with_a_validation_split(tmp_path):
    run = tmp_path / "run"
    assert _train(run, "--binarize", "dynamic", "--val-fraction", "0.1", "--epochs", "2") == 0
    history = json.loads((run / "history.json").read_text())
    assert all(v is not None and np.isfinite(v) for v in history["val_elbo"])


def test_small_faults_get_clear_errors(tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "vae",
                "--data",
                "moons",
                "--n",
                "1",
                "--val-fraction",
                "0.5",
                "--epochs",
                "1",
                "--out",
                str(tmp_path / "a"),
                "--no-progress",
            ]
        )
        == 2
    )
    assert "leaving none to train on" in capsys.readouterr().err
    assert _train(tmp_path / "b", "--epochs", "1", "--seed", str(2**70)) == 2
    assert "seed must be at most 2**63 - 1" in capsys.readouterr().err
    run = tmp_path / "c"
    assert _train(run, "--epochs", "1") == 0
    cfg = json.loads((run / "config.json").read_text())
    del cfg["fit"]
    (run / "config.json").write_text(json.dumps(cfg))
    assert main(["evaluate", str(run), "--no-progress"]) == 2
    assert "has no 'fit'" in capsys.readouterr().err
    for content in (b"", b"garbage, not a zip archive"):
        bad = tmp_path / "bad.npz"
        bad.write_bytes(content)
        argv = ["train", "vae", "--data", "mnist", "--data-path", str(bad), "--epochs", "1"]
        assert main([*argv, "--out", str(tmp_path / "d"), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert "cannot read" in err and "Traceback" not in err
    empty = tmp_path / "empty.npz"
    np.savez(empty, x_train=np.zeros((0, 28, 28), np.uint8), y_train=np.zeros(0, np.int64))
    argv = ["train", "vae", "--data", "mnist", "--data-path", str(empty), "--epochs", "1"]
    assert main([*argv, "--out", str(tmp_path / "e"), "--no-progress"]) == 2
    assert "holds no images" in capsys.readouterr().err


def test_cvae_labels_must_run_from_zero(tmp_path, capsys):
    images = np.random.default_rng(0).integers(0, 256, size=(40, 28, 28), dtype=np.uint8)
    shifted = tmp_path / "shifted.npz"
    np.savez(shifted, x_train=images, y_train=np.arange(40) % 10 + 20)
    argv = [
        "train",
        "cvae",
        "--task",
        "class",
        "--data",
        "mnist",
        "--data-path",
        str(shifted),
        "--epochs",
        "1",
    ]
    assert main([*argv, "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    assert "labels take 10 distinct value(s) from 20 to 29" in capsys.readouterr().err
