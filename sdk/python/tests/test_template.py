"""The SDK as sluice's worker template (SLUICE_TEMPLATE=1, workers/worker_template.h):
this test plays sluice's side of the control socket and of each forked worker's pipes."""

import array
import os
import socket
import subprocess
import sys

from conftest import PKG, fixture

import sluice_sdk as sluice

ECHO = os.path.join(os.path.dirname(PKG), "python", "examples", "echo", "main.py")


class Template:
    def __init__(self, args):
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = dict(os.environ, PYTHONPATH=PKG, SLUICE_TEMPLATE="1")
        self.proc = subprocess.Popen([sys.executable] + args, stdin=theirs, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        theirs.close()
        self.sock.settimeout(30)

    def recv(self):
        msg, anc, _, _ = self.sock.recvmsg(64, socket.CMSG_SPACE(4 * 4))
        fds = array.array("i")
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
        return msg.decode(), list(fds)

    def fork(self):
        """Asks for a worker; returns (pid, pidfd, its stdin writer, its stdout reader)."""
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        self.sock.sendmsg([b"fork"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                       array.array("i", [in_r, out_w, err_w]))])
        for fd in (in_r, out_w, err_w):
            os.close(fd)
        os.close(err_r)
        msg, fds = self.recv()
        assert msg.startswith("forked "), msg
        assert len(fds) == 1
        return int(msg.split()[1]), fds[0], os.fdopen(in_w, "wb", buffering=0), os.fdopen(out_r, "rb")

    def close(self):
        self.sock.close()
        self.proc.wait(30)
        self.proc.stdout.close()
        self.proc.stderr.close()


def test_the_template_forks_workers_that_serve_and_reports_their_exit():
    t = Template([ECHO])
    msg, _ = t.recv()
    assert msg == "ready %d" % t.proc.pid
    for _ in range(2):
        pid, pidfd, win, rout = t.fork()
        assert pid != t.proc.pid
        assert os.getpgid(pid) == pid  # its own process group
        hello = sluice.read_frame(rout)
        assert hello.hello.pid == pid
        win.write(fixture("hello_ack") + fixture("invoke"))
        frames = []
        while not any(f.WhichOneof("kind") == "result" for f in frames):
            frames.append(sluice.read_frame(rout))
        assert frames[-1].result.output == b"HELLO"
        win.close()  # end of input: the worker exits 0
        msg, _ = t.recv()
        assert msg == "exit %d 0" % pid
        os.close(pidfd)
        rout.close()
    t.sock.close()  # sluice gone: the template exits
    assert t.proc.wait(30) == 0
    # it wrote nothing to its stdout (sluice would take that for "no template support")
    assert t.proc.stdout.read() == b""
    t.close()


def test_a_worker_killed_by_a_signal_is_reported_with_its_wait_status():
    t = Template([ECHO])
    t.recv()
    pid, pidfd, win, rout = t.fork()
    os.kill(pid, 9)
    msg, _ = t.recv()
    assert msg == "exit %d 9" % pid  # a raw wait status: killed by SIGKILL
    os.close(pidfd)
    win.close()
    rout.close()
    t.close()


def test_the_forked_worker_does_not_see_the_flag():
    code = ("import os, sluice_sdk as s\n"
            "s.run(lambda e: os.environ.get('SLUICE_TEMPLATE', 'unset'))\n")
    t = Template(["-c", code])
    t.recv()
    pid, pidfd, win, rout = t.fork()
    sluice.read_frame(rout)
    win.write(fixture("hello_ack") + fixture("invoke"))
    result = sluice.read_frame(rout)
    assert result.result.output == b"unset"
    win.close()
    os.close(pidfd)
    rout.close()
    t.close()


def test_threads_at_import_refuse_the_template_role():
    code = ("import threading, time, sluice_sdk as s\n"
            "threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
            "s.run(lambda e: e.data)\n")
    t = Template(["-c", code])
    t.proc.wait(30)
    assert t.proc.returncode == 2
    assert b"threads are running" in t.proc.stderr.read()
    msg, _ = t.recv()
    assert msg == ""  # the socket closed without "ready"
    t.close()
