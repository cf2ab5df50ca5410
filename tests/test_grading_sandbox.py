"""The kernel's OS sandbox (autograder/kernel_sandbox.py) against a determined student.

One `course grade` run (as root, and again as an unprivileged instructor, user nobody, where the
sandbox is built in user namespaces) grades two DAY 1 submissions: a blank "victim", and a blank "attacker" whose
solution cells each try one attack on the grading infrastructure or on the answers (the attacks of
the isolation issue's groups 1 and 2). Every attack prints what it got; the test reads that from the
attacker's feedback, and checks the effects from outside: no points, the victim's row and file and
grades.csv unchanged, nothing received by a server on this machine, no process left behind.
"""
from __future__ import annotations

import csv
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from autograder import kernel_sandbox
from autograder.build import sample_path

REPO = Path(__file__).resolve().parents[1]
AID, NAME = "day1_optimization", "optimization"
MARKER = "course-sandbox-attack-4f1c"  # in the detached process's command line
TESTS = {"test_sgd", "test_momentum", "test_nesterov", "test_adagrad", "test_rmsprop", "test_adam",
         "test_lr_schedules", "test_minibatches", "test_init_weights"}

# grade_id of the solution cell -> attack (Python source; {ref}, {victim}, {out}, {port}, {marker} filled in)
ATTACKS = {
    "sgd": """
import ctypes as _ct, os as _os
_libc = _ct.CDLL(None, use_errno=True)
_fd = _libc.open({ref!r}.encode(), _os.O_RDONLY)  # libc's open: no Python audit event
_report("ctypes-open", _fd >= 0, f"errno {{_ct.get_errno()}}")
""",
    "momentum": """
import os as _os
try:
    _d = _os.open({solutions!r}, _os.O_RDONLY)
    _os.close(_os.open("day1_optimization/reference.py", _os.O_RDONLY, dir_fd=_d))
    _report("dir-fd", True)
except OSError as _e:
    _report("dir-fd", False, type(_e).__name__)
""",
    "nesterov": """
import subprocess as _sp
_r = _sp.run(["cat", {ref!r}], capture_output=True, text=True)
_report("subprocess-cat", "def " in _r.stdout, _r.stderr.strip()[:80])
""",
    "adagrad": """
import glob as _glob, os as _os, sqlite3 as _sq
_books = _glob.glob("/tmp/course-grade-*/*/gradebook.db") + _glob.glob("../../../gradebook.db") \\
    + _glob.glob({out!r} + "/**/*.db", recursive=True)
_done = 0
for _b in _books:
    try:
        with _sq.connect(_b) as _db:
            _db.execute("UPDATE grade SET manual_score = 100")
            _done += 1
    except Exception:
        pass
_report("gradebook", _done > 0, f"{{len(_books)}} found")
""",
    "rmsprop": """
_hit = []
for _path, _text in (({victim!r}, "tampered"), ({out!r} + "/grades.csv", "victim,x,99")):
    try:
        with open(_path, "a") as _f:
            _f.write(_text)
        _hit.append(_path)
    except OSError:
        pass
_report("other-files", bool(_hit), _hit)
""",
    "adam": """
import subprocess as _sp, sys as _sys
_code = '''
import os, sys, time
end = time.time() + 120
while time.time() < end:
    for path in sys.argv[1:3]:
        try:
            with open(path, "a") as f:
                f.write("detached was here")
        except OSError:
            pass
    time.sleep(0.2)
'''
_p = _sp.Popen([_sys.executable, "-c", _code, {victim!r}, {out!r} + "/grades.csv", {marker!r}],
               start_new_session=True, stdout=_sp.DEVNULL, stderr=_sp.DEVNULL)
_report("detached", False, "started; it must not outlive the kernel")
""",
    "lr_schedules": """
import ctypes as _ct, glob as _glob, os as _os, socket as _so
_libc = _ct.CDLL(None, use_errno=True)
_joined = 0
for _ns in _glob.glob("/proc/*/ns/net"):
    try:
        _fd = _os.open(_ns, _os.O_RDONLY)
        _joined += _libc.setns(_fd, 0x40000000) == 0  # CLONE_NEWNET
    except OSError:
        pass
try:
    _so.create_connection(("127.0.0.1", {port}), timeout=3).sendall(b"stolen")
    _report("setns", True, _joined)
except OSError:
    _report("setns", _joined > 0, _joined)
""",
    "init_weights": """
import os as _os, signal as _sig
_killed = []  # processes not the submission's own (another user's) that it could kill
for _pid in [int(p) for p in _os.listdir("/proc") if p.isdigit()]:
    try:
        _theirs = _os.stat(f"/proc/{{_pid}}").st_uid != _os.getuid()
        if _pid != _os.getpid():
            _os.kill(_pid, _sig.SIGKILL)
            _killed += [_pid] if _theirs else []
    except OSError:
        pass
_report("kill-grader", bool(_killed), _killed)
""",
}


# Prepended to the first attack: prints ATTACK[name]=LEAKED|BLOCKED (a string the cells' source never
# contains, since the feedback shows the source too).
REPORT = """
def _report(name, leaked, detail=""):
    print(f"ATTACK[{name}]={'LEAKED' if leaked else 'BLOCKED'} {detail}")
"""


def _attacker(paths: dict) -> nbformat.NotebookNode:
    nb = nbformat.read(sample_path(AID, "blank"), as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in ATTACKS:
            cell.source = (REPORT if gid == "sgd" else "") + ATTACKS[gid].format(**paths) + "\n" + cell.source
    return nb


def _left_behind() -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if MARKER in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                found.append(pid)
        except OSError:
            pass
    return found


def _as_nobody(cmd: list[str], home: Path) -> list[str]:
    """``cmd`` run as user nobody, in a mount namespace where the folder that hides Python from other
    users (this machine's /root, holding pyenv) is replaced by a tmpfs that holds only Python."""
    python = Path(sys.base_prefix).resolve()
    hidden = next((p for p in reversed(python.parents) if not p.stat().st_mode & stat.S_IXOTH), None)
    script = "set -e\n"
    if hidden is not None:
        keep = python.relative_to(hidden).parts[0]
        script += (f"mkdir -p {home}/keep && mount --bind {hidden / keep} {home}/keep && "
                   f"mount -t tmpfs -o mode=0755 course-test {hidden} && mkdir {hidden / keep} && "
                   f"mount --move {home}/keep {hidden / keep}\n")
    script += 'exec setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$0" "$@"\n'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(home), *cmd]


@pytest.fixture(params=["root", "unprivileged"])
def instructor(request):
    """Who runs `course grade`: root, or nobody (the sandbox then built in user namespaces); and the
    folder to grade in, which that user can write."""
    if request.param == "unprivileged" and (os.geteuid() != 0 or shutil.which("setpriv") is None):
        pytest.skip("becoming an unprivileged user needs root and setpriv")
    folder = Path(tempfile.mkdtemp(prefix="course-sandbox-test-"))
    folder.chmod(0o755)
    yield request.param, folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.skipif(not kernel_sandbox.available()[0], reason=f"no kernel sandbox here: {kernel_sandbox.available()[1]}")
def test_attacks_on_the_grader_and_the_answers_get_nothing(instructor, loopback_server):
    user, folder = instructor
    subs, out = folder / "subs", folder / "out"
    victim = subs / "victim" / AID / f"{NAME}.ipynb"
    victim.parent.mkdir(parents=True)
    victim.write_bytes(sample_path(AID, "blank").read_bytes())
    before = victim.read_bytes()
    paths = dict(ref=str(REPO / "solutions" / AID / "reference.py"), solutions=str(REPO / "solutions"),
                 victim=str(victim), out=str(out), port=loopback_server.port, marker=MARKER)
    (subs / "attacker" / AID).mkdir(parents=True)
    nbformat.write(_attacker(paths), subs / "attacker" / AID / f"{NAME}.ipynb")
    cmd = [sys.executable, "-m", "course.cli", "grade", str(subs), "--out", str(out), "--jobs", "2"]
    if user == "unprivileged":
        (folder / "home").mkdir()
        subprocess.run(["chown", "-R", "65534:65534", str(folder)], check=True)
        cmd = _as_nobody(cmd, folder / "home")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    left = _left_behind()
    received = loopback_server.stop()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "cannot" not in proc.stderr and "unsafe" not in proc.stderr, proc.stderr  # sandboxed, network cut
    rows = {r["student_id"]: r for r in csv.DictReader(open(out / "grades.csv"))}
    assert set(rows) == {"attacker", "victim"}
    for student in rows:  # no points, every test failed, nothing stopped the grading
        assert float(rows[student]["score"]) == 0 and set(rows[student]["failed_tests"].split()) == TESTS, rows[student]
        assert rows[student]["status"] in ("graded", "flagged"), rows[student]
        assert "killed" not in rows[student]["problem"] and "kernel died" not in rows[student]["problem"], rows[student]
    html = (out / "feedback" / "attacker" / AID / f"{NAME}.html").read_text()
    for name in ("ctypes-open", "dir-fd", "subprocess-cat", "gradebook", "other-files", "detached", "setns",
                 "kill-grader"):
        assert f"ATTACK[{name}]=BLOCKED" in html, name  # the attack ran, and got nothing
    assert "=LEAKED" not in html
    assert victim.read_bytes() == before
    assert "detached was here" not in (out / "grades.csv").read_text()
    assert received == []
    assert left == [], f"processes started by the submission outlived it: {left}"


def test_no_sandbox_means_no_grading_without_the_unsafe_flag(tmp_path):
    (tmp_path / "subs" / "s" / AID).mkdir(parents=True)
    (tmp_path / "subs" / "s" / AID / f"{NAME}.ipynb").write_bytes(sample_path(AID, "blank").read_bytes())
    env = dict(os.environ, PATH=str(tmp_path / "no-tools"))  # unshare, setpriv and mount cannot be found
    proc = subprocess.run([sys.executable, "-m", "course.cli", "grade", str(tmp_path / "subs"), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot sandbox the student's kernel" in lines[0] and "--unsafe-no-sandbox" in lines[0], lines
    assert not (tmp_path / "out" / "grades.csv").exists()
