"""Build, start and stop the simulated vCenter lab (tests/lab).

Used by tests/conftest.py and from the command line:

    python tests/labctl.py build
    python tests/labctl.py run [--lab tests/lab/labs/default.yaml] [--dir DIR] [--fleet N] [--fault SPEC ...]
                               [--scale NAME] [--wine-cache DIR]

``run`` builds the lab if needed, starts it in the foreground, prints
``export VSPHERE_SERVER=... VSPHERE_USER=... VSPHERE_PASSWORD=... VSPHERE_CA_FILE=...
MSCSCTL_GUEST_USER=... MSCSCTL_GUEST_PASSWORD=...``
and serves until Ctrl-C (or SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import os
import selectors
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

LAB_SRC = Path(__file__).resolve().parent / "lab"
DEFAULT_LAB = LAB_SRC / "labs" / "default.yaml"
# vSphere 8.0 U2 and 7.0 U3 labs for clustered VMDK, NVMe and the 7.0/8.0 refusals (README.md)
VSPHERE8_LAB = LAB_SRC / "labs" / "vsphere8.yaml"
VSPHERE7_LAB = LAB_SRC / "labs" / "vsphere7.yaml"
DISK_KEY = r"HKLM\System\CurrentControlSet\Services\Disk"
# The guest login of every lab VM unless its lab file says otherwise.
GUEST_USER = "Administrator"
GUEST_PASSWORD = "Guest-Passw0rd!"


class LabUnavailable(RuntimeError):
    """Go is not installed: the lab cannot be built here."""


class LabBuildError(RuntimeError):
    """Go is installed but building the lab failed."""


def bin_dir() -> Path:
    """Where the lab binary is cached: $MSCSCTL_LAB_BIN_DIR, else tests/lab/bin/."""
    env = os.environ.get("MSCSCTL_LAB_BIN_DIR")
    return Path(env) if env else LAB_SRC / "bin"


def _sources() -> list[Path]:
    return [*LAB_SRC.glob("*.go"), LAB_SRC / "go.mod", LAB_SRC / "go.sum"]


def find_go() -> str | None:
    """The go command: on PATH, else in $GOROOT/bin or /usr/local/go/bin."""
    found = shutil.which("go")
    if found:
        return found
    for d in (os.environ.get("GOROOT"), "/usr/local/go"):
        if d and os.access(Path(d) / "bin" / "go", os.X_OK):
            return str(Path(d) / "bin" / "go")
    return None


def build(force: bool = False) -> Path:
    """Build the lab (``go build``) unless the cached binary is newer than its sources."""
    target = bin_dir() / "lab"
    if not force and target.exists():
        newest = max(p.stat().st_mtime for p in _sources() if p.exists())
        if target.stat().st_mtime >= newest:
            return target
    go = find_go()
    if go is None:
        raise LabUnavailable("Go toolchain not found on PATH: cannot build the vCenter lab (tests/lab)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"lab.{os.getpid()}.tmp")
    proc = subprocess.run(
        [go, "build", "-buildvcs=false", "-o", str(tmp), "."],
        cwd=LAB_SRC,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise LabBuildError(f"go build of tests/lab failed:\n{proc.stdout}{proc.stderr}")
    tmp.replace(target)
    return target


class Lab:
    """A running lab server.

    Attributes: ``url``, ``host``, ``port``, ``ca_file``, ``username``,
    ``password``, ``pid``, ``run_dir``, ``info`` (the JSON line the server printed).
    """

    def __init__(self, proc: subprocess.Popen[bytes], info: Mapping[str, Any], run_dir: Path, log: Path):
        self._proc = proc
        self.info = dict(info)
        self.url: str = info["url"]
        self.host: str = info["host"]
        self.port: int = int(info["port"])
        self.ca_file: str = info["ca_file"]
        self.username: str = info["username"]
        self.password: str = info["password"]
        self.pid: int = int(info["pid"])
        self.run_dir = run_dir
        self.log_file = log
        self._sis: list[Any] = []
        # set by start() when it made the run directory itself: removed at stop()
        self.owns_run_dir = False

    # --- client side -----------------------------------------------------

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment variables for mscsctl (and other clients) to reach the lab."""
        return {
            "VSPHERE_SERVER": self.server,
            "VSPHERE_USER": self.username,
            "VSPHERE_PASSWORD": self.password,
            "VSPHERE_CA_FILE": self.ca_file,
        }

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def connect(self, **kwargs: Any) -> Any:
        """A pyVmomi ServiceInstance logged in over verified TLS (disconnected at stop())."""
        from pyVim.connect import SmartConnect

        args: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.username,
            "pwd": self.password,
            "sslContext": self.ssl_context(),
        }
        args.update(kwargs)
        si = SmartConnect(**args)
        self._sis.append(si)
        return si

    # --- control API -----------------------------------------------------

    def control(self, method: str, path: str, body: Any = None) -> Any:
        """Call the lab control API (``/lab/...``); returns the decoded JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"https://{self.server}/lab/{path.lstrip('/')}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, context=self.ssl_context(), timeout=30) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"lab control {method} {path}: {e.code} {e.read().decode(errors='replace')}") from e

    def inject_fault(self, spec: Mapping[str, Any] | None = None, **fields: Any) -> int:
        """Install a fault rule, e.g. ``inject_fault(method="ReconfigVM_Task", call=2, fault="TaskInProgress")``.

        Returns the rule id.
        """
        rule = dict(spec or {})
        rule.update(fields)
        return int(self.control("POST", "faults", rule)["ids"][0])

    def faults(self) -> list[dict[str, Any]]:
        return self.control("GET", "faults")

    def clear_faults(self) -> None:
        self.control("DELETE", "faults")

    def remove_fault(self, rule_id: int) -> None:
        self.control("DELETE", f"faults/{rule_id}")

    def end_sessions(self) -> int:
        """End every session: each client's next call answers NotAuthenticated."""
        return int(self.control("POST", "sessions/end")["ended"])

    def plant_snapshot(self, vm: str, name: str, description: str = "", memory: bool = False) -> str:
        """Give a VM a snapshot even where ESXi refuses one (a bus-sharing controller): the
        snapshot a user left on a node. Returns the snapshot's moref."""
        body = {"name": name, "description": description, "memory": memory}
        return str(self.control("POST", f"vms/{urllib.parse.quote(vm, safe='')}/snapshots", body)["snapshot"])

    def calls(self) -> dict[str, int]:
        """SOAP calls received so far, per method name."""
        return self.control("GET", "calls")

    def reset_calls(self) -> None:
        """Reset the call counts and the traffic counts."""
        self.control("DELETE", "calls")

    def traffic(self) -> dict[str, dict[str, int]]:
        """SOAP bytes so far per method: ``{"sent": {...}, "received": {...}}`` (sent: the answers)."""
        return self.control("GET", "traffic")

    # --- guests (Wine prefixes) ------------------------------------------

    @property
    def wine_missing(self) -> str | None:
        """Why this lab cannot run guest programs (no Wine, ``--wine off``), or None."""
        return self.info.get("wine_missing")

    def guest(self, vm: str) -> dict[str, Any]:
        """A VM's guest: ``prefix`` (its Wine prefix, None until first used) and ``temp_files``."""
        return self.control("GET", f"guests/{urllib.parse.quote(vm, safe='')}")

    def guest_reg(self, vm: str, *args: str) -> tuple[int, str]:
        """Run ``reg.exe ARGS`` straight in the VM's Wine prefix: (exit code, output)."""
        answer = self.control("POST", f"guests/{urllib.parse.quote(vm, safe='')}/reg", {"args": list(args)})
        return int(answer["exit_code"]), answer["output"]

    def guest_disk_timeout(self, vm: str) -> tuple[str, str] | None:
        """TimeOutValue as the VM's registry holds it, e.g. ``("REG_DWORD", "0x3c")``; None when absent."""
        code, out = self.guest_reg(vm, "query", DISK_KEY, "/v", "TimeOutValue")
        if code != 0:
            if "unable to find" in out.lower():
                return None
            raise RuntimeError(f"reg.exe query in {vm}'s prefix exited with {code}: {out.strip()}")
        for line in out.splitlines():
            words = line.split()
            if len(words) == 3 and words[0] == "TimeOutValue":
                return words[1], words[2]
        raise RuntimeError(f"reg.exe query in {vm}'s prefix answered no TimeOutValue line: {out!r}")

    def guest_temp_files(self, vm: str, pattern: str = "mscsctl-*.txt") -> list[str]:
        """Files matching ``pattern`` in the guest's Windows temp folder (drive_c/windows/temp of its prefix)."""
        return [n for n in self.guest(vm)["temp_files"] if fnmatch.fnmatch(n.lower(), pattern.lower())]

    # --- lifecycle -------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop the server with SIGTERM (SIGKILL after ``timeout``)."""
        if self._sis:
            from pyVim.connect import Disconnect

            for si in self._sis:
                with contextlib.suppress(Exception):
                    Disconnect(si)
            self._sis.clear()
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout)
        if self._proc.stdin:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
        if self._proc.stdout:
            self._proc.stdout.close()
        if self.owns_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        return self._proc.returncode

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(
    lab: str | os.PathLike[str] | None = DEFAULT_LAB,
    run_dir: str | os.PathLike[str] | None = None,
    fleet: int | None = None,
    faults: Iterable[str | Mapping[str, Any]] = (),
    binary: Path | None = None,
    timeout: float = 60.0,
    extra_args: Iterable[str] = (),
    wine_cache: str | os.PathLike[str] | None = None,
    scale: str | None = None,
) -> Lab:
    """Start a lab server and wait for its JSON line. ``lab=None`` with ``fleet`` builds only the fleet.

    ``wine_cache``: a directory where the template Wine prefix of the guests is kept for
    every lab given the same directory (``--wine-cache``; default $MSCSCTL_LAB_WINE_CACHE).
    ``scale``: a size profile (``--scale small|realistic``, tests/lab/README.md).
    """
    exe = binary or build()
    rd = Path(run_dir) if run_dir else Path(tempfile.mkdtemp(prefix="mscsctl-lab-"))
    rd.mkdir(parents=True, exist_ok=True)
    args = [str(exe), "--dir", str(rd), "--watch-stdin"]
    if lab is not None:
        args += ["--lab", str(lab)]
    if fleet:
        args += ["--fleet", str(fleet)]
    if scale:
        args += ["--scale", scale]
    for f in faults:
        args += ["--fault", f if isinstance(f, str) else json.dumps(dict(f))]
    if wine_cache is not None:
        args += ["--wine-cache", str(wine_cache)]
    args += list(extra_args)
    log = rd / "lab.log"
    with open(log, "ab") as logf:
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=logf)
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    line = b""
    try:
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"lab did not start within {timeout}s; see {log}")
            if not sel.select(left):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                proc.wait(5)
                raise RuntimeError(
                    f"lab exited with {proc.returncode} before serving:\n{log.read_text(errors='replace')}"
                )
            line += chunk
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise
    finally:
        sel.close()
    info = json.loads(line.decode())
    lab_server = Lab(proc, info, rd, log)
    lab_server.owns_run_dir = run_dir is None
    return lab_server


# --- pyVmomi helpers for tests ------------------------------------------------
#
# Read VMs through precise property paths: pyVmomi cannot parse some whole
# properties of the simulator (e.g. VirtualMachine.resourceConfig).


def find(si: Any, vimtype: Any, name: str) -> Any:
    """The managed object of a type with that name (KeyError if none)."""
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vimtype], True)
    try:
        for obj in view.view:
            if obj.name == name:
                return obj
    finally:
        view.Destroy()
    raise KeyError(f"{vimtype.__name__} {name!r} not found")


def find_all(si: Any, vimtype: Any) -> list[Any]:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vimtype], True)
    try:
        return list(view.view)
    finally:
        view.Destroy()


def props(si: Any, obj: Any, *paths: str) -> dict[str, Any]:
    """Read property paths of one object through the PropertyCollector."""
    from pyVmomi import vmodl

    pc = si.content.propertyCollector
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=obj, skip=False)],
        propSet=[vmodl.query.PropertyCollector.PropertySpec(type=type(obj), pathSet=list(paths), all=False)],
    )
    out: dict[str, Any] = {}
    res = pc.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions())
    for oc in res.objects if res else []:
        for p in oc.propSet:
            out[p.name] = p.val
    return out


def prop(si: Any, obj: Any, path: str) -> Any:
    return props(si, obj, path).get(path)


def wait(task: Any, timeout: float = 30.0) -> Any:
    """Wait for a vim.Task; return its result or raise its error (a vim fault)."""
    deadline = time.monotonic() + timeout
    while True:
        info = task.info
        if info.state == "success":
            return info.result
        if info.state == "error":
            raise info.error
        if time.monotonic() > deadline:
            raise TimeoutError(f"task {task._moId} still {info.state} after {timeout}s")
        time.sleep(0.01)


def _export_lines(lab: Lab) -> str:
    """The line to paste into a shell: vCenter's variables and the lab guests' login."""
    env = {**lab.env(), "MSCSCTL_GUEST_USER": GUEST_USER, "MSCSCTL_GUEST_PASSWORD": GUEST_PASSWORD}
    return "export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="labctl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the lab binary (tests/lab/bin/lab)")
    b.add_argument("--force", action="store_true")
    r = sub.add_parser("run", help="start a lab in the foreground")
    r.add_argument("--lab", default=str(DEFAULT_LAB), help="lab file (default: %(default)s); 'none' with --fleet")
    r.add_argument("--dir", help="run directory (default: a new temporary directory)")
    r.add_argument("--fleet", type=int, help="add N generated clusters Fleet-01..")
    r.add_argument("--scale", help="grow the lab to a size profile: small | realistic")
    r.add_argument("--fault", action="append", default=[], help="fault rule (repeatable)")
    r.add_argument("--wine-cache", help="keep the guests' template Wine prefix here for later runs")
    args = p.parse_args(argv)

    try:
        if args.cmd == "build":
            print(build(force=args.force))
            return 0
        lab = start(
            None if args.lab == "none" else args.lab,
            args.dir,
            args.fleet,
            args.fault,
            wine_cache=args.wine_cache,
            scale=args.scale,
        )
    except (LabUnavailable, LabBuildError, RuntimeError, TimeoutError) as e:
        print(f"labctl: {e}", file=sys.stderr)
        return 1

    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"# lab {lab.url} (pid {lab.pid}, run dir {lab.run_dir}, log {lab.log_file})")
    print(f"# control API: https://{lab.server}/lab/  -- Ctrl-C to stop")
    if lab.wine_missing:
        print(f"# guest operations unavailable: {lab.wine_missing}")
    else:
        print(f"# guest login: {GUEST_USER} / {GUEST_PASSWORD} (exported below)")
    print(_export_lines(lab), flush=True)
    try:
        while not stop and lab.running:
            time.sleep(0.2)
    finally:
        lab.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
