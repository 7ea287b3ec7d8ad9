"""What admins expect of a command line: --version, global options anywhere, completion, plain
help, govc's variables, `show` in a directory of states.

Each runs through the real entry point, `reconciler.cli.main`, in process (or as a
subprocess where the shell or the environment matters); nothing reaches a vCenter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from providers.vcenter.connection import settings_from_env
from reconciler.cli import app, global_options_first, main, output
from reconciler.errors import VCenterConnectionError
from state import LocalFileBackend
from state.model import State

ROOT = Path(__file__).resolve().parent.parent.parent
CAB = ROOT / "examples" / "cluster-across-boxes.yaml"
CIB = ROOT / "examples" / "cluster-in-a-box.yaml"
MSCSCTL = [sys.executable, "-c", "import sys; from reconciler.cli import main; sys.exit(main())"]
HASH = "0" * 64


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("VSPHERE_", "GOVC_", "MSCSCTL_")) or name == "NO_COLOR":
            monkeypatch.delenv(name, raising=False)


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def subprocess_run(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MSCSCTL_", "VSPHERE_", "GOVC_"))}
    full_env = {**clean, "PYTHONPATH": str(ROOT), "VSPHERE_SERVER": "127.0.0.1:9", **(env or {})}
    return subprocess.run(
        [*MSCSCTL, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=60, check=False
    )


# --version


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_is_the_installed_packages(capsys, flag):
    code, out, err = run(capsys, flag)
    assert (code, out, err) == (0, f"mscsctl {version('mscsctl')}\n", "")


# global options, before or after the command


def test_global_options_are_moved_before_the_command_wherever_they_stand():
    assert global_options_first(["plan", "f.yaml", "--no-color", "--log-format", "json", "-q"]) == [
        "--no-color",
        "--log-format",
        "json",
        "-q",
        "plan",
        "f.yaml",
    ]
    assert global_options_first(["validate", "--log-format=json", "a.yaml"]) == [
        "--log-format=json",
        "validate",
        "a.yaml",
    ]
    assert global_options_first(["validate", "--", "--quiet"]) == ["validate", "--", "--quiet"]


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_before_or_after_the_command(capsys, where):
    args = ["--quiet", "validate", str(CIB)] if where == "before" else ["validate", str(CIB), "--quiet"]
    code, out, _ = run(capsys, *args)
    assert code == 0
    assert out == f"{CIB}: valid (1 warning)\n"


@pytest.mark.parametrize("where", ["before", "after"])
def test_no_color_before_or_after_the_command(capsys, where):
    args = ["--no-color", "validate", str(CAB)] if where == "before" else ["validate", str(CAB), "--no-color"]
    assert run(capsys, *args)[0] == 0
    assert output._settings["no_color"] is True
    run(capsys, "validate", str(CAB))
    assert output._settings["no_color"] is False


@pytest.mark.parametrize("where", ["before", "after"])
def test_log_format_json_before_or_after_the_command(where, tmp_path):
    args = ["--log-format", "json", "show"] if where == "before" else ["show", "--log-format", "json"]
    done = subprocess_run(*args, "--no-color", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    record = json.loads(done.stderr.strip().splitlines()[-1])
    assert record["level"] == "error" and "no state in this directory" in record["msg"]


# shell completion


def test_show_completion_prints_a_bash_script():
    done = subprocess_run(
        "--show-completion", "bash", env={"SHELL": "/bin/bash", "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    )
    assert done.returncode == 0, done.stderr
    assert "complete -o default -F _mscsctl_completion mscsctl" in done.stdout
    assert "_MSCSCTL_COMPLETE=complete_bash" in done.stdout


def test_completion_answers_command_names():
    done = subprocess_run(env={"_MSCSCTL_COMPLETE": "complete_bash", "COMP_WORDS": "mscsctl pl", "COMP_CWORD": "1"})
    assert done.stdout.split() == ["plan"]


# help without internal placeholders


def _commands() -> list[str]:
    from reconciler.cli import _register

    _register()
    return sorted(c.name or c.callback.__name__ for c in app.registered_commands)


@pytest.mark.parametrize("command", _commands())
def test_every_commands_help_is_plain(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    for placeholder in ("<list[", "{", "Path]"):
        assert placeholder not in out, f"{command} --help shows {placeholder!r}:\n{out}"
    usage = out.splitlines()[0]
    assert usage.startswith(f"Usage: mscsctl {command} [OPTIONS]")


def test_usage_lines_read_as_the_readme_writes_them(capsys):
    expected = {
        "validate": "Usage: mscsctl validate [OPTIONS] FILE|DIR...",
        "plan": "Usage: mscsctl plan [OPTIONS] FILE|DIR",
        "apply": "Usage: mscsctl apply [OPTIONS] FILE|DIR|PLAN",
        "show": "Usage: mscsctl show [OPTIONS] [FILE]",
        "force-unlock": "Usage: mscsctl force-unlock [OPTIONS] ID",
    }
    for command, usage in expected.items():
        assert run(capsys, command, "--help")[1].splitlines()[0] == usage


# govc's variables


def test_govc_url_with_credentials():
    settings = settings_from_env(env={"GOVC_URL": "https://admin%40vsphere.local:s3cr%3At@vc.example.com/sdk"})
    assert (settings.host, settings.port) == ("vc.example.com", 443)
    assert (settings.user, settings.password) == ("admin@vsphere.local", "s3cr:t")
    assert settings.allow_unverified is False


def test_govc_url_as_a_host_with_username_password_and_insecure():
    env = {"GOVC_URL": "vc.example.com:8989", "GOVC_USERNAME": "u", "GOVC_PASSWORD": "p", "GOVC_INSECURE": "1"}
    settings = settings_from_env(env=env)
    assert (settings.host, settings.port, settings.user, settings.password) == ("vc.example.com", 8989, "u", "p")
    assert settings.allow_unverified is True
    assert settings_from_env(env={**env, "GOVC_INSECURE": "true"}).allow_unverified is True
    assert settings_from_env(env={**env, "GOVC_INSECURE": "0"}).allow_unverified is False


def test_govc_username_and_password_win_over_the_urls():
    env = {"GOVC_URL": "https://a:b@vc", "GOVC_USERNAME": "u", "GOVC_PASSWORD": "p"}
    settings = settings_from_env(env=env)
    assert (settings.host, settings.user, settings.password) == ("vc", "u", "p")


def test_vsphere_variables_win_over_govcs():
    env = {
        "VSPHERE_SERVER": "vc1",
        "VSPHERE_USER": "v",
        "VSPHERE_PASSWORD": "vp",
        "VSPHERE_ALLOW_UNVERIFIED_SSL": "false",
        "GOVC_URL": "https://g:gp@vc2:444/sdk",
        "GOVC_INSECURE": "1",
    }
    settings = settings_from_env(env=env)
    assert (settings.host, settings.port, settings.user, settings.password) == ("vc1", 443, "v", "vp")
    assert settings.allow_unverified is False
    assert settings_from_env(server="vc3", env=env).host == "vc3"


def test_govc_url_with_a_bad_port_and_nothing_set():
    with pytest.raises(VCenterConnectionError, match="GOVC_URL 'vc:x'"):
        settings_from_env(env={"GOVC_URL": "https://u:p@vc:x/sdk"})
    with pytest.raises(VCenterConnectionError, match="GOVC_URL"):
        settings_from_env(env={})


# show without FILE


def _record(path: Path, cluster: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    LocalFileBackend(path).write(State.new(cluster, HASH), expected_serial=None)


def test_show_without_a_file_shows_the_one_state_here(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _record(tmp_path / "mscsctl.state.json", "sql-prod-01")
    code, out, _ = run(capsys, "show")
    assert code == 0 and out.startswith("cluster sql-prod-01  serial 1")


def test_show_without_a_file_lists_several_states(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _record(tmp_path / ".mscsctl" / "sql-a.state.json", "sql-a")
    _record(tmp_path / ".mscsctl" / "sql-b.state.json", "sql-b")
    code, out, _ = run(capsys, "show")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "2 states here; show one with: mscsctl show --state PATH"
    assert "sql-a.state.json  cluster sql-a" in lines[1] and "sql-b.state.json  cluster sql-b" in lines[2]
    code, out, _ = run(capsys, "show", "--json")
    assert [row["cluster"] for row in json.loads(out)["states"]] == ["sql-a", "sql-b"]


def test_show_without_a_file_and_no_state_here(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "show")
    assert code == 1 and out == ""
    assert "no state in this directory" in err
