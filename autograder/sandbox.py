"""Run a command cut off from the network and from the grader: ``python -m autograder.sandbox -- CMD ARGS...``.

The command (nbgrader, and the kernel that runs the student's code) gets namespaces of its own:

- a network namespace holding only a loopback interface: nbgrader still talks to its kernel over
  127.0.0.1, but nothing outside this machine, and no service on this machine's own loopback,
  can be reached;
- a PID namespace, in which the command is process 1: the kernel cannot see or signal the
  grader or any other submission's processes, and when the command ends (or is killed) every
  process left in the namespace is killed by the OS, so nothing outlives it.

Creating namespaces needs root (CAP_SYS_ADMIN) on Linux, or, for any other user, a user namespace
around them (where the kernel allows unprivileged ones): the command is then root inside it, the
instructor's own user outside. Elsewhere `course grade` runs submissions with the network as it is
and says so.
"""
from __future__ import annotations

import ctypes
import fcntl
import functools
import os
import signal
import socket
import struct
import subprocess
import sys

from autograder.kernel_sandbox import exit_status

CLONE_NEWNET, CLONE_NEWPID, CLONE_NEWUSER = 0x40000000, 0x20000000, 0x10000000
PR_SET_PDEATHSIG = 1
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def isolate() -> None:
    """Move this process into a new network namespace, and its next child into a new PID namespace;
    bring the loopback up (raises OSError)."""
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.geteuid(), os.getegid()
    if libc.unshare(CLONE_NEWNET | CLONE_NEWPID | (CLONE_NEWUSER if uid != 0 else 0)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    if uid != 0:  # root in the new user namespace is this user outside (user_namespaces(7))
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(s, SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))


@functools.lru_cache(maxsize=None)
def available() -> tuple[bool, str]:
    """(works, why not): whether this machine lets `course grade` cut submissions off the network."""
    if not sys.platform.startswith("linux"):
        return False, "network namespaces exist only on Linux"
    try:
        proc = subprocess.run([sys.executable, "-m", "autograder.sandbox", "--", sys.executable, "-c", "pass"],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        return False, str(e)
    if proc.returncode == 0:
        return True, ""
    return False, (proc.stderr.strip().splitlines() or ["unknown reason"])[-1]


def wrap(cmd: list[str]) -> list[str]:
    """``cmd`` run without network access, when this machine allows it; else ``cmd`` unchanged."""
    return [sys.executable, "-m", "autograder.sandbox", "--", *cmd] if available()[0] else cmd


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print("usage: python -m autograder.sandbox -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    cmd = argv[argv.index("--") + 1:]
    try:
        isolate()
    except OSError as e:
        print(f"cannot create network and PID namespaces ({e.strerror or e}); it needs root on Linux, "
              "or unprivileged user namespaces", file=sys.stderr)
        return 3
    child = os.fork()  # the first process in the new PID namespace
    if child == 0:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # dies with this process
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # pass a stop on, then end with the command
        signal.signal(s, lambda signum, frame: os.kill(child, signal.SIGKILL))
    return exit_status(child)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
