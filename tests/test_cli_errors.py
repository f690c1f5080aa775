"""An output folder genaug cannot write: `genaug demo` and `genaug evaluate-generator` exit 2 with one line
naming the folder and the OS error, up front (before any work), instead of a traceback after the work."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch

from genaug.cli import main

EVAL = ["evaluate-generator", "--model", "mnist-cgan", "--num", "20", "--cas-seeds", "--no-floor", "--kid-subsets", "3",
        "--no-progress", "--threads", "1"]
COMMANDS = {"demo": ["demo"], "evaluate-generator": EVAL}


@pytest.fixture
def no_work(monkeypatch):
    """Fail if the command starts its real work: the folder must be checked first."""
    import genaug.demo
    import genaug.metrics.report

    def never(*a, **k):
        raise AssertionError("the work started although the output folder is unusable")
    monkeypatch.setattr(genaug.demo, "run_demo", never)
    monkeypatch.setattr(genaug.metrics.report, "evaluate_generator", never)


def _error_line(capsys, command):
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith(f"genaug {command}: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert not captured.out
    return err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_out_is_a_file(tmp_path, capsys, no_work, command):
    target = tmp_path / "taken"
    target.write_text("x")
    assert main([*COMMANDS[command], "--out", str(target)]) == 2
    err = _error_line(capsys, command)
    assert f"--out '{target}' exists and is not a folder" in err
    assert main([*COMMANDS[command], "--out", str(target / "sub")]) == 2
    err = _error_line(capsys, command)
    assert f"--out '{target / 'sub'}': cannot create the output folder ([Errno 20] Not a directory" in err
    assert target.read_text() == "x"


def _read_only_in_process(tmp_path, capsys, command):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert main([*COMMANDS[command], "--out", str(ro)]) == 2
        err = _error_line(capsys, command)
        assert f"--out '{ro}': cannot write to the output folder ([Errno 13] Permission denied" in err
        assert main([*COMMANDS[command], "--out", str(ro / "sub")]) == 2
        assert f"--out '{ro / 'sub'}': cannot create the output folder ([Errno 13] Permission denied" in _error_line(
            capsys, command)
    finally:
        ro.chmod(0o755)


def _read_only_without_privileges(tmp_path):
    """As the audit ran it: root without CAP_DAC_OVERRIDE, so that a 0555 folder is really read-only."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    tmp_path.chmod(0o755)
    script = (
        "import sys\n"
        "from genaug.cli import main\n"
        f"for argv in ({['demo']!r}, {EVAL!r}):\n"
        f"    for out in ({str(ro)!r}, {str(ro / 'sub')!r}):\n"
        "        print('RC', main([*argv, '--out', out]), flush=True)\n")
    try:
        res = subprocess.run(["capsh", "--drop=cap_dac_override,cap_dac_read_search,cap_fowner", "--", "-c",
                              f"{sys.executable} -W ignore -c \"$0\"", script], capture_output=True, text=True,
                             timeout=300, cwd=tmp_path)
    finally:
        ro.chmod(0o755)
    assert res.stdout.split() == ["RC", "2"] * 4, res.stdout + res.stderr[-3000:]
    lines = res.stderr.splitlines()
    assert len(lines) == 4 and "Traceback" not in res.stderr, res.stderr[-3000:]
    for line, cmd, what in zip(lines, ["demo", "demo", "evaluate-generator", "evaluate-generator"],
                               ["cannot write to", "cannot create", "cannot write to", "cannot create"]):
        assert line.startswith(f"genaug {cmd}: error: --out '{ro}") and what in line and "Permission denied" in line
    assert not list(ro.iterdir())


def test_read_only_folder(tmp_path, capsys, no_work, monkeypatch):
    """A 0555 folder: in this process when permissions apply to this user; as root (which ignores them)
    in a child without the capabilities that ignore them (capsh); as root without capsh, the folder's
    write probe is made to fail as on a read-only file system."""
    probe = tmp_path / "probe"
    probe.mkdir()
    probe.chmod(0o555)
    permissions_apply = not os.access(probe, os.W_OK)
    probe.chmod(0o755)
    if permissions_apply:
        for command in sorted(COMMANDS):
            (tmp_path / command).mkdir()
            _read_only_in_process(tmp_path / command, capsys, command)
    elif shutil.which("capsh"):
        _read_only_without_privileges(tmp_path)
    else:
        import genaug.cli

        def read_only(*args, **kwargs):
            raise PermissionError(13, "Permission denied", kwargs.get("dir"))
        monkeypatch.setattr(genaug.cli.tempfile, "mkstemp", read_only)
        for command in sorted(COMMANDS):
            assert main([*COMMANDS[command], "--out", str(tmp_path / command)]) == 2
            assert "cannot write to the output folder ([Errno 13] Permission denied" in _error_line(capsys, command)


def test_write_failure_after_the_work_is_one_line(tmp_path, capsys, monkeypatch):
    """Last resort: the folder was fine up front but writing fails later (permissions changed, disk full)."""
    import genaug.demo
    import genaug.metrics.report

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x.png"))
    monkeypatch.setattr(genaug.demo, "run_demo", refuse)
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert _error_line(capsys, "demo") == (f"genaug demo: error: writing to --out '{tmp_path}' failed: "
                                           f"[Errno 13] Permission denied: '{tmp_path / 'x.png'}'\n")
    monkeypatch.setattr(genaug.metrics.report, "evaluate_generator", lambda *a, **k: object())
    monkeypatch.setattr(genaug.metrics.report, "write_report", refuse)
    assert main([*EVAL, "--out", str(tmp_path)]) == 2
    assert _error_line(capsys, "evaluate-generator") == (
        f"genaug evaluate-generator: error: writing the report to --out '{tmp_path}' failed: "
        f"[Errno 13] Permission denied: '{tmp_path / 'x.png'}'\n")


def test_check_output_folder_leaves_nothing_behind(tmp_path):
    from genaug.cli import check_output_folder

    created = check_output_folder(tmp_path / "a" / "b")
    assert created == [tmp_path / "a" / "b", tmp_path / "a"] and not list((tmp_path / "a" / "b").iterdir())
    assert check_output_folder(tmp_path / "a" / "b") == []            # an existing folder: nothing created


def test_robustness_checks_out_and_device_before_the_run(tmp_path, capsys, monkeypatch):
    import genaug.robustness.evaluation as evaluation

    def never(*a, **k):
        raise AssertionError("the evaluation started although --out or --device is unusable")
    monkeypatch.setattr(evaluation, "evaluate", never)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    target = tmp_path / "taken"
    target.write_text("x")
    argv = ["robustness", "--model", "mnist-classifier", "--data", "mnist5k:test", "--limit", "8", "--corruptions",
            "fog", "--severities", "1", "--no-progress"]
    assert main([*argv, "--out", str(target / "sub")]) == 2
    err = capsys.readouterr().err
    assert err == f"genaug robustness: --out '{target / 'sub'}': cannot create the output folder ([Errno 20] Not a " \
                  f"directory: '{target / 'sub'}')\n"
    assert main([*argv, "--out", str(tmp_path / "o"), "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("genaug robustness: --device='cuda': CUDA is not available") and err.count("\n") == 1
    assert not (tmp_path / "o").exists()
