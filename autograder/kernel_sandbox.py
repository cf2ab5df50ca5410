"""Run a submission's Jupyter kernel in an OS sandbox, built with util-linux's unshare(1), mount(8)
and setpriv(1) (no home-made isolation code; see docs/ARCHITECTURE.md, "The kernel's sandbox").

``wrap(kernel_argv, connection_file)`` gives the command that nbgrader's kernel manager runs instead
of the kernel (``nbgrader_ext.SandboxedKernelManager``):

    unshare --mount --pid --ipc --uts --fork --kill-child --propagation private \\
        python -I autograder/kernel_sandbox.py --connection-file F -- KERNEL ARGV...

This module's ``main`` is then process 1 of a new PID namespace, still root, in a mount namespace of
its own. It builds the kernel's filesystem on a fresh tmpfs and starts the kernel in it through
setpriv, then waits for it. The kernel sees:

- read-only: the system (/usr, /etc, the /bin and /lib links), the Python installation, and from
  the course only what running a submission needs: ``course/``, ``autograder/``, ``data/``, the
  virtual environment and the hidden tests' modules (``solutions/**/__init__.py``, ``hidden.py``).
  Nothing else exists in there: not the reference code, the samples, the gradebook, the other
  submissions, grades.csv, git history or anybody's home folder;
- writable: its own scratch folder (a tmpfs at its working directory, also its $HOME), a fresh
  /tmp and /dev/shm, and the judge's folder for this notebook (judge.py), where its hidden tests
  leave their observations;
- a fresh /proc of its own PID namespace: it cannot see or signal the grader, and when process 1
  ends (with the kernel, or killed with the grader: PDEATHSIG) the OS kills everything left inside;
- as user and group 65534 (nobody), no supplementary groups, no capabilities, no_new_privs.

Without root the same sandbox is built in a user namespace (``unshare --user --map-root-user``; and in
``course grade`` the worker's, sandbox.py). There this module is root only inside the namespace, and
user 65534 does not exist in it, so the kernel becomes nobody in one more user namespace, nested
(``unshare --user --map-user=65534``), in which it holds no capability. On the host it is then the
instructor's own user: what keeps it from the instructor's files is that it cannot see them (the
read-only binds and the tmpfs above, which a user namespace locks: it can neither unmount nor remount
them), not its user id.

Network: the kernel shares the grading worker's network namespace, which holds only a loopback
interface (autograder/sandbox.py): it reaches its own ZeroMQ channels and nothing else.
Building this needs root or unprivileged user namespaces; elsewhere ``available()`` says why not.
"""
from __future__ import annotations

import argparse
import functools
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOBODY = 65534
UNSHARE = ["unshare", "--mount", "--pid", "--ipc", "--uts", "--fork", "--kill-child", "--propagation", "private"]
SETPRIV = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=-all",
           "--bounding-set=-all", "--no-new-privs", "--"]
# In a user namespace without user 65534: nobody in a nested user namespace, without capabilities (they
# go at the exec of setpriv, as for any user but root; its bounding set cannot be dropped there, since
# unshare needs CAP_SETFCAP to map the parent's root, and no_new_privs keeps it from regaining any).
NESTED_NOBODY = ["unshare", "--user", f"--map-user={NOBODY}", f"--map-group={NOBODY}", "--",
                 "setpriv", "--inh-caps=-all", "--no-new-privs", "--"]
SYSTEM = ["/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt"]
REPO_PARTS = ["course", "autograder", "data"]  # from the course repository, besides the hidden tests
# The tamper guard's configuration file (nbgrader_ext.ArmGuard): moved to the same path inside, for the
# kernel's guard to read and delete.
GUARD_CONFIG = "COURSE_GUARD_CONFIG"
# The judge's folder (judge.Channel): bound writable at the same path inside, where the kernel's scenarios
# read their challenges and leave their observations.
JUDGE_CHANNEL = "COURSE_JUDGE_DIR"


def hidden_test_modules(repo: Path = REPO) -> list[Path]:
    """The files of ``solutions/`` a kernel may import: the package markers and the hidden tests."""
    return sorted(p for p in (repo / "solutions").rglob("*.py") if p.name in ("__init__.py", "hidden.py"))


def wrap(kernel_argv: list[str], connection_file: str) -> list[str]:
    """The command that runs ``kernel_argv`` in the sandbox."""
    # not root: the namespaces' own root, in a user namespace. -I: the launcher (root until setpriv)
    # reads no PYTHON* variable and no user site folder
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    return [UNSHARE[0], *user, *UNSHARE[1:], sys.executable, "-I", str(Path(__file__).resolve()), "--connection-file", connection_file,
            "--", *kernel_argv]


@functools.lru_cache(maxsize=None)
def available() -> tuple[bool, str]:
    """(works, why not): whether this machine can run kernels in the sandbox (tried once per process)."""
    if not sys.platform.startswith("linux"):
        return False, "the kernel sandbox uses Linux namespaces"
    missing = [tool for tool in ("unshare", "setpriv", "mount") if shutil.which(tool) is None]
    if missing:
        return False, f"{' and '.join(missing)} (util-linux) not found on PATH"
    probe = "import os, sys; sys.exit(0 if (os.getuid(), os.getgid()) == (65534, 65534) else 9)"
    try:
        with tempfile.TemporaryDirectory(prefix="course-sandbox-probe-") as cwd:
            proc = subprocess.run(wrap([sys.executable, "-c", probe], ""), capture_output=True, text=True,
                                  timeout=60, cwd=cwd)
    except (OSError, subprocess.SubprocessError) as e:
        return False, f"the kernel sandbox could not start ({e})"
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or ['exit status ' + str(proc.returncode)])[-1]
        if os.geteuid() != 0:
            why += "; without root it needs unprivileged user namespaces (sysctl user.max_user_namespaces)"
        return False, f"the kernel sandbox could not start ({why})"
    return True, ""


def kernel_owner() -> int:
    """The user (and group) id, in this process's user namespace, that owns the kernel's files: nobody
    where it exists (root on the host), else this namespace's root, which the nested namespace maps to
    nobody. Meaningful where this process is root, in its namespace or on the host."""
    for line in Path("/proc/self/uid_map").read_text().splitlines():
        first, _outside, count = map(int, line.split())
        if first <= NOBODY < first + count:
            return NOBODY
    return 0


# ----------------------------------------------------------------------------- inside the namespaces


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


def _bind(source: Path, root: Path, *, writable: bool = False) -> None:
    """``source`` at the same path under ``root``, read-only unless ``writable``."""
    target = root / str(source).lstrip("/")
    if source.is_symlink() and source.parent == Path("/"):  # /bin -> usr/bin on merged-/usr systems
        target.symlink_to(os.readlink(source))
        return
    if source.is_dir():
        target.mkdir(parents=True, exist_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()
    if writable:
        _mount("--rbind", str(source), str(target))
        return
    try:
        _mount("--bind", "-o", "ro", str(source), str(target))
    except subprocess.CalledProcessError:
        # In a user namespace a folder with mounts below it (/sys's cgroups) binds only with them, which
        # keep their own flags and permissions (the cgroups are root's)
        _mount("--rbind", "-o", "ro", str(source), str(target))


def _matplotlib_cache() -> Path:
    env = os.environ.get("MPLCONFIGDIR")
    return Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "matplotlib"


def build_root(root: Path, workdir: Path) -> None:
    """The kernel's filesystem, on a tmpfs mounted at ``root`` (see the module's docstring)."""
    _mount("-t", "tmpfs", "-o", "mode=0755", "course-kernel", str(root))
    python = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}
    course = [REPO / part for part in REPO_PARTS] + hidden_test_modules()
    read_only = sorted({Path(p) for p in SYSTEM if os.path.lexists(p)} | python | set(course),
                       key=lambda p: len(p.parts))
    (root / "tmp").mkdir(mode=0o1777)
    _mount("-t", "tmpfs", "-o", "mode=1777", "course-kernel-tmp", str(root / "tmp"))
    for path in read_only:
        _bind(path, root)
    _bind(Path("/sys"), root)
    (root / "dev").mkdir()
    _bind(Path("/dev"), root, writable=True)  # device nodes (null, urandom, ...); their own permissions apply
    _mount("-t", "tmpfs", "-o", "mode=1777", "course-kernel-shm", str(root / "dev" / "shm"))
    channel = os.environ.get(JUDGE_CHANNEL, "")
    if channel and os.path.isdir(channel) and not os.path.islink(channel):  # the judge's folder (judge.py)
        _bind(Path(channel), root, writable=True)
    (root / "proc").mkdir()
    _mount("-t", "proc", "proc", str(root / "proc"))
    scratch = root / str(workdir).lstrip("/")
    scratch.mkdir(parents=True, exist_ok=True)
    owner = kernel_owner()
    _mount("-t", "tmpfs", "-o", f"mode=0700,uid={owner},gid={owner}", "course-kernel-scratch", str(scratch))
    fonts = scratch / ".matplotlib"
    fonts.mkdir()
    for cached in glob.glob(str(_matplotlib_cache() / "fontlist-*.json")):  # else every kernel rebuilds it
        shutil.copy(cached, fonts)
    for path in [fonts, *fonts.iterdir()]:
        os.chown(path, owner, owner)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder.kernel_sandbox", description=__doc__.splitlines()[0])
    p.add_argument("--connection-file", default="", help="the kernel's connection file, copied into its scratch folder")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if os.getpid() != 1 or not command:
        print("run by autograder.kernel_sandbox.wrap(): process 1 of a new PID namespace, with a command", file=sys.stderr)
        return 2
    workdir = Path.cwd()
    if any(workdir == p or workdir in p.parents for p in [REPO, Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()]):
        print(f"the kernel's working folder {workdir} holds the course or Python itself; run it elsewhere", file=sys.stderr)
        return 2
    connection = Path(args.connection_file).read_bytes() if args.connection_file else b""
    build_root(workdir, workdir)  # the new root is mounted over the working folder, whose contents it hides
    kernel_connection = workdir / ".kernel.json"
    (workdir / str(kernel_connection).lstrip("/")).write_bytes(connection)
    owner = kernel_owner()
    os.chown(workdir / str(kernel_connection).lstrip("/"), owner, owner)
    command = [str(kernel_connection) if arg == args.connection_file and arg else arg for arg in command]
    guard_config = os.environ.pop(GUARD_CONFIG, "")
    if guard_config and os.path.isfile(guard_config):
        inside = workdir / guard_config.lstrip("/")
        inside.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(guard_config, inside)
        os.chown(inside, owner, owner)
    env = dict(os.environ, HOME=str(workdir), TMPDIR="/tmp", IPYTHONDIR=str(workdir / ".ipython"),
               MPLCONFIGDIR=str(workdir / ".matplotlib"), XDG_CACHE_HOME=str(workdir / ".cache"),
               JUPYTER_RUNTIME_DIR=str(workdir / ".jupyter"),
               JPY_PARENT_PID="1")  # its parent is process 1 here: ipykernel then skips its parent poller
    child = os.fork()
    if child == 0:  # the kernel, as nobody without capabilities, inside the new root
        try:
            if owner == NOBODY:
                os.chroot(str(workdir))
                os.chdir(str(workdir))
                os.execvpe(SETPRIV[0], [*SETPRIV, *command], env)
            # a chrooted process may not create a user namespace: unshare changes the root after it
            nested = [NESTED_NOBODY[0], f"--root={workdir}", f"--wd={workdir}", *NESTED_NOBODY[1:]]
            os.execvpe(nested[0], [*nested, *command], env)
        finally:
            os._exit(127)
    # Process 1 stays root and keeps unshare's PDEATHSIG (setpriv's change of user clears the kernel's):
    # when it ends, the OS kills everything in the namespace. Interrupts (SIGINT) are the kernel's.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return exit_status(child)


def exit_status(child: int) -> int:
    """Wait for ``child``; its exit code, or 128 + N when signal N killed it (as a shell says it)."""
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
