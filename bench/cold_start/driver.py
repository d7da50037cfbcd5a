#!/usr/bin/env python3
"""bench/cold_start driver: the time from a call reaching a function scaled to zero to
its first result, beside the bare start of an equivalent hello-world program.

Per runtime (python, node, go: the SDK's echo example over `runtime: stdio`; exec:
`cat`) and per round, in this order:
  base   spawn the baseline (the same interpreter or a bare binary reading one line
         and writing it back), write a line, read its answer: spawn -> answer
  direct (stdio rows) the SDK worker alone, spawned by this driver on pipes: read its
         Hello, write HelloAck + Invoke (sdk/testdata fixtures), read its Result:
         spawn -> Result, with no engine (what the SDK's start costs); direct CPU is the
         process's until it exits, direct_res_cpu its main thread's up to the Result
         (/proc/PID/schedstat: what lies on the way to the answer)
  fork   (stdio rows whose command can serve as a worker template, i.e. the Python SDK)
         the same SDK worker forked from a template this driver started and waited
         for (SLUICE_TEMPLATE=1, workers/README.md "Worker templates"): fork request ->
         Hello -> Result, what a cold start costs with the template; its CPU is the
         forked worker's own (/proc/PID/schedstat) up to its Result
  sync   a fresh `sluice run` whose function has `workers: {min: 0}` and no worker
         yet (checked on /metrics), then POST /function/{name}: request -> answer
         (stdio rows: after the pool's worker template is ready, or known unsupported)
  event  the same, a fresh engine, POST /async-function/{name} with X-Callback-Url:
         request -> the callback with the result (the event is stored in the local
         queue and runs through the dispatcher, as a published event does)
  warm   the same as event, on a fresh engine whose worker is already running
         (`workers: {min: 1}`, ready): what the event path costs without the cold
         start, first callback connection included (event - warm is the start)
base and direct also give the child's CPU time (user + system), which a loaded machine
inflates far less than wall time. Prints one line per round and the medians; RESULT
lines go to stderr.
Stdlib only.
"""

import argparse
import http.client
import http.server
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.005)
    raise SystemExit(f"error: {what} within {seconds} s")


class Callbacks:
    """An HTTP server on a thread that records when each callback arrives (by call id)."""

    def __init__(self):
        self.arrived = {}
        self.cv = threading.Condition()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                t = time.perf_counter()
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                call = self.headers.get("ce-id") or self.headers.get("X-Call-Id") or ""
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with outer.cv:
                    outer.arrived[call] = (t, body, dict(self.headers))
                    outer.cv.notify_all()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_any(self, after_count, seconds):
        with self.cv:
            ok = self.cv.wait_for(lambda: len(self.arrived) > after_count, seconds)
            if not ok:
                return None
            return max(v[0] for v in self.arrived.values())


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def spawn(cmd):
    # the environment sluice gives a worker (workers/environment.cc): PATH and HOME
    env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=False, env=env)


def baseline(cmd):
    """(seconds, CPU seconds) of the bare program: spawn -> its answer line."""
    cpu = children_cpu()
    t = time.perf_counter()
    p = spawn(cmd)
    p.stdin.write(b"hello\n")
    p.stdin.flush()
    line = p.stdout.readline()
    dt = time.perf_counter() - t
    p.stdin.close()
    p.wait()
    if line.strip().lower() != b"hello":
        raise SystemExit(f"error: baseline {cmd} answered {line!r}")
    return dt, children_cpu() - cpu


def read_frame(f):
    head = f.read(4)
    if len(head) < 4:
        raise SystemExit("error: the SDK worker closed its stdout")
    return f.read(int.from_bytes(head, "big"))


def thread_cpu(pid):
    """CPU seconds of the process's main thread so far."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


def direct(cmd, frames):
    """(seconds, CPU seconds, main-thread CPU seconds to the Result) of the SDK worker
    alone: spawn -> Hello -> its Result."""
    cpu = children_cpu()
    t = time.perf_counter()
    p = spawn(cmd)
    read_frame(p.stdout)  # Hello
    p.stdin.write(frames)  # HelloAck + Invoke
    p.stdin.flush()
    while read_frame(p.stdout)[:1] != b"\x22":  # Frame.result = 4 (Log frames come first)
        pass
    dt = time.perf_counter() - t
    res_cpu = thread_cpu(p.pid)
    p.stdin.close()
    p.wait()
    return dt, children_cpu() - cpu, res_cpu


class Template:
    """A worker template of `cmd`, as the engine keeps one (stdin: a SOCK_SEQPACKET socket)."""

    def __init__(self, cmd):
        import array
        self.array = array
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
        env["SLUICE_TEMPLATE"] = "1"
        self.proc = subprocess.Popen(cmd, stdin=theirs, stdout=subprocess.PIPE, close_fds=True, env=env)
        theirs.close()
        self.sock.settimeout(30)
        import select
        # "ready" on the socket, or a Hello on stdout: the command does not know the flag
        readable, _, _ = select.select([self.sock, self.proc.stdout], [], [], 30)
        self.ok = self.sock in readable and self.recv()[0].startswith(b"ready ")

    def recv(self):
        try:
            msg, anc, _, _ = self.sock.recvmsg(64, socket.CMSG_SPACE(16))
        except OSError:
            return b"", []
        fds = self.array.array("i")
        for _, _, data in anc:
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
        return msg, list(fds)

    def fork(self, frames):
        """(seconds, CPU seconds of the forked worker) of fork request -> Hello -> Result."""
        t = time.perf_counter()
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        self.sock.sendmsg([b"fork"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                       self.array.array("i", [in_r, out_w, 2]))])
        os.close(in_r)
        os.close(out_w)
        while True:
            msg, fds = self.recv()
            if msg.startswith(b"forked "):
                break
            for fd in fds:
                os.close(fd)
        pid = int(msg.split()[1])
        for fd in fds:
            os.close(fd)
        win, rout = os.fdopen(in_w, "wb", buffering=0), os.fdopen(out_r, "rb")
        read_frame(rout)  # Hello
        win.write(frames)
        while read_frame(rout)[:1] != b"\x22":
            pass
        dt = time.perf_counter() - t
        cpu = thread_cpu(pid)
        win.close()
        rout.close()
        while not self.recv()[0].startswith(b"exit "):
            pass
        return dt, cpu

    def close(self):
        self.sock.close()
        self.proc.kill()
        self.proc.wait(10)
        self.proc.stdout.close()


class Engine:
    def __init__(self, sluice, tmp, function_lines, workers=0):
        self.dir = tempfile.mkdtemp(dir=tmp)
        self.port, self.mport = free_port(), free_port()
        with open(os.path.join(self.dir, "sluice.yaml"), "w") as f:
            f.write(f"""brokers:
  local: {{ kind: local, path: ./data/q.db }}
http: {{ listen: 127.0.0.1:{self.port}, callback_allow: [127.0.0.1/32] }}
metrics: {{ listen: 127.0.0.1:{self.mport} }}
engine: {{ drain_timeout: 1s }}
functions:
  - name: cold
{function_lines}
    concurrency: 1
    timeout: 30s
    workers: {{ min: {workers}, max: 1, idle_after: 0s }}
    subscribe: [{{ broker: local, topic: cold-in }}]
""")
        self.log = open(os.path.join(self.dir, "sluice.log"), "wb")
        self.proc = subprocess.Popen([sluice, "run", "-c", "sluice.yaml"], cwd=self.dir,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: self._get(self.port, "/readyz") == 200, 20, "the engine was not ready")
        pooled = "runtime: exec" not in function_lines  # exec starts a process per call
        wait_for(lambda: self.workers() == (workers if pooled else 0), 20,
                 f"the function did not have {workers} worker(s)")
        if "runtime: stdio" in function_lines and "worker_template: false" not in function_lines:
            # a stdio pool starts a worker template (workers/README.md) with the engine: a
            # function scaled to zero for a while has it ready, or knows it is not supported
            wait_for(lambda: self.template_settled(), 20, "the worker template did not settle")
        if workers:  # and it is ready: one call answered (then wait for its callback-less end)
            self.ready_check()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def template_settled(self):
        with open(os.path.join(self.dir, "sluice.log"), "rb") as f:
            log = f.read()
        return b"] ready: new workers are forked" in log or b"] not used (" in log

    def _get(self, port, path):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            r = c.getresponse()
            self._body = r.read()
            c.close()
            return r.status
        except OSError:
            return None

    def workers(self):
        if self._get(self.mport, "/metrics") != 200:
            return None
        for line in self._body.decode().splitlines():
            if line.startswith('sluice_workers{') and 'function="cold"' in line:
                return int(float(line.rsplit(" ", 1)[1]))
        return None

    def ready_check(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request("POST", "/function/cold", body=b"hello")
        r = c.getresponse()
        r.read()
        c.close()
        if r.status != 200:
            raise SystemExit(f"error: the warm-up call answered {r.status}\n{self.tail()}")

    def post(self, path, headers=None):
        self.conn.request("POST", path, body=b"hello", headers=headers or {})
        r = self.conn.getresponse()
        return r.status, r.read()

    def stop(self):
        self.conn.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def tail(self):
        with open(os.path.join(self.dir, "sluice.log"), "rb") as f:
            return f.read()[-3000:].decode(errors="replace")


def timed_sync(e, cb):
    t = time.perf_counter()
    status, body = e.post("/function/cold")
    dt = time.perf_counter() - t
    if status != 200 or body.strip().lower() != b"hello":
        raise SystemExit(f"error: sync invoke answered {status} {body[:200]!r}\n{e.tail()}")
    return dt


def timed_event(e, cb):
    before = len(cb.arrived)
    t = time.perf_counter()
    status, body = e.post("/async-function/cold", {"X-Callback-Url": f"http://127.0.0.1:{cb.port}/cb"})
    if status != 202:
        raise SystemExit(f"error: async invoke answered {status} {body[:200]!r}\n{e.tail()}")
    got = cb.wait_any(before, 30)
    if got is None:
        raise SystemExit(f"error: no callback within 30 s (the first event lost?)\n{e.tail()}")
    return got - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sluice", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--testdata", required=True, help="sdk/testdata (hello_ack.bin, invoke.bin)")
    ap.add_argument("--row", action="append", default=[],
                    help="NAME|BASELINE COMMAND (json list)|FUNCTION LINES (yaml)")
    a = ap.parse_args()
    import json
    cb = Callbacks()
    frames = b"".join(open(os.path.join(a.testdata, n), "rb").read() for n in ("hello_ack.bin", "invoke.bin"))
    keys = ("base", "base_cpu", "direct", "direct_cpu", "direct_res_cpu", "fork", "fork_cpu", "sync", "event", "warm")
    print(f"{'row':<7} {'round':>5} " + " ".join(f"{k + '_ms':>14}" for k in keys))
    for spec in a.row:
        name, base_cmd, fn_lines = spec.split("|", 2)
        base_cmd = json.loads(base_cmd)
        fig = {k: [] for k in keys}
        worker_cmd = None
        for line in fn_lines.splitlines():
            if "runtime: stdio" in line:
                worker_cmd = True
            if line.strip().startswith("command:") and worker_cmd:
                worker_cmd = json.loads(line.split(":", 1)[1])
        tpl = Template(worker_cmd) if worker_cmd else None
        if tpl and not tpl.ok:
            tpl.close()
            tpl = None
        for r in range(1, a.rounds + 1):
            if tpl:
                dt, cpu = tpl.fork(frames)
                fig["fork"].append(dt)
                fig["fork_cpu"].append(cpu)
            dt, cpu = baseline(base_cmd)
            fig["base"].append(dt)
            fig["base_cpu"].append(cpu)
            if worker_cmd:
                dt, cpu, res_cpu = direct(worker_cmd, frames)
                fig["direct"].append(dt)
                fig["direct_cpu"].append(cpu)
                fig["direct_res_cpu"].append(res_cpu)
            for key, workers, timed in (("sync", 0, timed_sync), ("event", 0, timed_event),
                                        ("warm", 1, timed_event)):
                e = Engine(a.sluice, a.tmp, fn_lines, workers)
                try:
                    fig[key].append(timed(e, cb))
                finally:
                    e.stop()
            print(f"{name:<7} {r:>5} " + " ".join(f"{fig[k][-1] * 1000 if fig[k] else float('nan'):>14.2f}"
                                                  for k in keys), flush=True)
        if tpl:
            tpl.close()
        med = {k: statistics.median(v) * 1000 if v else float("nan") for k, v in fig.items()}
        print(f"{name:<7} {'med':>5} " + " ".join(f"{med[k]:>14.2f}" for k in keys), flush=True)
        print(f"RESULT cold_start_{name} base_ms={med['base']:.2f} base_cpu_ms={med['base_cpu']:.2f} "
              f"direct_ms={med['direct']:.2f} direct_cpu_ms={med['direct_cpu']:.2f} "
              f"direct_res_cpu_ms={med['direct_res_cpu']:.2f} "
              f"fork_ms={med['fork']:.2f} fork_cpu_ms={med['fork_cpu']:.2f} sync_ms={med['sync']:.2f} "
              f"event_ms={med['event']:.2f} warm_ms={med['warm']:.2f} "
              f"sync_ratio={med['sync'] / med['base']:.2f} event_ratio={med['event'] / med['base']:.2f} "
              f"start_ms={med['event'] - med['warm']:.2f} rounds={a.rounds}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
