# mypy: allow-untyped-defs
# (It runs on the kernel's own interpreter, Python 3.9 or newer, standard library and
# pyzmq only; its functions are kept free of annotations that interpreter may lack.)
"""Written by kernelctl into a Slurm kernel's kernelspec; needs nothing of kernelctl, only
the standard library and pyzmq (which ipykernel brings). docs/slurm-kernels.md.

    relay KERNEL_DIR -f CONNECTION_FILE   the launcher runs it on the server's node
    kernel RUN_DIR KERNEL_DIR             srun or sbatch runs it where the compute is
    janitor RUN_DIR RELAY_PID             the relay starts it, detached

The relay is what the Jupyter client talks to, on the ports of its connection file. It
starts the kernel as a job step (srun in the server's allocation) or as its own job
(sbatch), answers kernel_info while the job waits in the queue (so no client gives up),
says in the notebook why cells wait, and then forwards every message to the kernel,
which listens on the compute node. When the job ends under it (scancel, time limit,
failure) the relay stays and every cell says why: the client does not restart it in a
loop. `interrupt_mode` is "message": the interrupt travels as a control message.

Nothing is left behind: the relay cancels its job when it stops; the janitor cancels it
when the relay was killed (the server SIGKILLed, the kernel's process group killed);
the kernel side stops the kernel when the relay's heartbeat file goes stale (the
server's node died).
"""
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

HEARTBEAT_EVERY = 5.0  # seconds between the relay's touches of RUN_DIR/alive
HEARTBEAT_STALE = 30.0  # the kernel side gives up on a relay silent this long
POLL_EVERY = 2.0  # seconds between looks at the job's state
CHANNELS = ("shell", "control", "stdin", "iopub", "hb")
DELIM = b"<IDS|MSG>"


# ---------------------------------------------------------------- shared small parts

def settings(kernel_dir):
    with open(os.path.join(kernel_dir, "kernel.json")) as spec_file:
        metadata = json.load(spec_file).get("metadata", {})
    return metadata.get("kernelctl_slurm", {}), metadata.get("kernelctl", {})


def runs_dir(env):
    """Where runs are recorded: the same place `kernelctl list` reads (KERNELCTL_HOME)."""
    home = env.get("KERNELCTL_HOME") or os.path.join(
        env.get("HOME") or os.path.expanduser("~"), ".local", "share", "kernelctl")
    return os.path.join(os.path.abspath(home), "slurm-runs")


def write_json(path, data):
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        json.dump(data, out)
    os.replace(temporary, path)


def read_json(path):
    try:
        with open(path) as source:
            return json.load(source)
    except (OSError, ValueError):
        return None


def alive(pid, started=None):
    """Whether `pid` runs and is the process that started at `started` (no pid reuse)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return started is None or start_time(pid) == started


def start_time(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def slurm(args, timeout=30):
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, "", str(exc)
    return done.returncode, done.stdout, done.stderr


def job_state(job):
    """(STATE, reason, node, time left) of a job: squeue while it is queued or running,
    scontrol after (Slurm keeps ended jobs for MinJobAge)."""
    code, out, _ = slurm(["squeue", "-h", "-j", str(job), "-o", "%T|%r|%N|%L"])
    if code == 0 and out.strip():
        state, reason, node, left = (out.strip().splitlines()[0].split("|") + [""] * 4)[:4]
        return state, "" if reason == "None" else reason, node, left
    code, out, _ = slurm(["scontrol", "-o", "show", "job", str(job)])
    fields = dict(re.findall(r"(\w+)=(\S*)", out)) if code == 0 else {}
    return (fields.get("JobState", "GONE"), fields.get("Reason", ""),
            fields.get("NodeList", ""), "")


def cancel(job, step=None):
    if job:
        slurm(["scancel", f"{job}.{step}" if step not in (None, "") else str(job)])


def finished(state):
    return state not in ("PENDING", "CONFIGURING", "RUNNING", "SUSPENDED", "COMPLETING",
                         "REQUEUED", "RESIZING", "SIGNALING", "STAGE_OUT")


# ---------------------------------------------------------------- the Jupyter protocol

class Signer:
    def __init__(self, key, scheme):
        self.key = key.encode()
        self.digest = getattr(hashlib, scheme.split("-", 1)[1]) if key else None

    def sign(self, parts):
        if not self.digest:
            return b""
        mac = hmac.new(self.key, digestmod=self.digest)
        for part in parts:
            mac.update(part)
        return mac.hexdigest().encode()

    def message(self, msg_type, content, parent=None, idents=()):
        header = {"msg_id": uuid.uuid4().hex, "session": SESSION, "username": "kernelctl",
                  "date": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
                  "msg_type": msg_type, "version": "5.3"}
        parts = [json.dumps(part).encode() for part in (header, parent or {}, {}, content)]
        return [*idents, DELIM, self.sign(parts), *parts]


SESSION = uuid.uuid4().hex


def parse(frames):
    """(idents, header, parent header) of a multipart message, or None."""
    try:
        at = frames.index(DELIM)
        return frames[:at], json.loads(frames[at + 2]), json.loads(frames[at + 3])
    except (ValueError, IndexError):
        return None


# ---------------------------------------------------------------- the relay

class Relay:
    def __init__(self, kernel_dir, connection_file):
        import zmq

        self.zmq = zmq
        self.kernel_dir = os.path.abspath(kernel_dir)
        self.name = os.path.basename(self.kernel_dir.rstrip("/"))
        self.wanted, self.binding = settings(self.kernel_dir)
        self.step_mode = self.wanted.get("mode") == "step"
        with open(connection_file) as source:
            self.connection = json.load(source)
        self.signer = Signer(self.connection.get("key", ""),
                             self.connection.get("signature_scheme", "hmac-sha256"))
        # One directory per start; a restart (same connection file) finds the one before.
        self.run_stem = os.path.splitext(os.path.basename(connection_file))[0]
        self.kernel_runs = os.path.join(runs_dir(os.environ), self.name)
        self.run_dir = os.path.join(self.kernel_runs, f"{self.run_stem}.{os.getpid()}")
        self.context = zmq.Context()
        self.poller = zmq.Poller()
        self.front = self._bind_front()
        self.back = {}
        self.phase = "pending"  # then "connecting", "running", and "ended"
        self.why_ended = ""
        self.queued = []  # (channel, frames) held until the kernel is up
        self.waiting_cells = []  # parent headers of cells waiting for the job
        self.running_cell = None
        self.shutting_down = False
        self.probes = set()  # msg_ids of the relay's own kernel_info requests
        self.next_probe = 0.0
        self.job = self.step = None
        self.srun = None
        self.submitted_at = time.monotonic()
        self.last_said = None
        self.state = {}
        self.parent = os.getppid()

    def _bind_front(self):
        zmq, info = self.zmq, self.connection
        kinds = {"shell": zmq.ROUTER, "control": zmq.ROUTER, "stdin": zmq.ROUTER,
                 "iopub": zmq.PUB, "hb": zmq.REP}
        sockets = {}
        for channel in CHANNELS:
            sock = self.context.socket(kinds[channel])
            sock.linger = 1000
            sock.bind(f"{info.get('transport', 'tcp')}://{info['ip']}:{info[channel + '_port']}")
            sockets[channel] = sock
        return sockets

    # -- start

    def start(self):
        os.makedirs(self.run_dir, mode=0o700, exist_ok=True)
        self._retire_previous_run()
        self._touch()
        write_json(os.path.join(self.run_dir, "request.json"), {
            "key": self.connection.get("key", ""),
            "signature_scheme": self.connection.get("signature_scheme", "hmac-sha256"),
            "transport": self.connection.get("transport", "tcp"),
            "loopback": self.step_mode})
        subprocess.Popen([sys.executable, os.path.abspath(__file__), "janitor", self.run_dir,
                          str(os.getpid())], start_new_session=True,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        if self.step_mode:
            self._start_step()
        else:
            self._submit_job()
        self._record()

    def _retire_previous_run(self):
        """A restart reuses the connection file: the job of the run before must be gone
        before this one starts (never two jobs for one kernel)."""
        for entry in os.listdir(self.kernel_runs):
            if not entry.startswith(self.run_stem + ".") or \
                    os.path.join(self.kernel_runs, entry) == self.run_dir:
                continue
            previous = read_json(os.path.join(self.kernel_runs, entry, "state.json")) or {}
            pid = previous.get("relay_pid")
            if pid and alive(pid, previous.get("relay_started")):
                os.kill(pid, signal.SIGTERM)
            if previous.get("job"):
                step = previous.get("step") if previous.get("mode") == "step" else None
                cancel(previous["job"], step)
                deadline = time.monotonic() + 30
                while step is None and time.monotonic() < deadline \
                        and not finished(job_state(previous["job"])[0]):
                    time.sleep(0.5)

    def _launch_args(self):
        """The launcher, to run the kernel side: sbatch takes it as the batch script (a
        copy: hence the kernel's dir as an argument), srun runs it with /bin/sh."""
        launcher = [os.path.join(self.kernel_dir, "kernelctl-launch.sh"),
                    "--kernelctl-slurm-kernel", self.run_dir, self.kernel_dir]
        return ["/bin/sh", *launcher] if self.step_mode else launcher

    def _slurm_env(self):
        # sbatch --export=LIST (batchspawner) leaves SLURM_EXPORT_ENV, which every srun
        # applies: the kernel's step would lose the kernel's own environment.
        env = {k: v for k, v in os.environ.items()
               if k not in ("SLURM_EXPORT_ENV", "SBATCH_EXPORT", "SRUN_EXPORT_ENV")}
        return env

    def _start_step(self):
        job = os.environ.get("SLURM_JOB_ID")
        if not job:
            return self._end(
                f"the kernel '{self.name}' runs as a job step of the allocation the Jupyter "
                "server runs in, and this server is not in a Slurm allocation. Start "
                "JupyterLab inside one (salloc, sbatch, or your site's JupyterHub), or "
                f"make it a job of its own: kernelctl slurm {self.name} --mode job")
        node = os.environ.get("SLURMD_NODENAME") or socket.gethostname().split(".")[0]
        options = ["--jobid", job, "--export=ALL", "--ntasks=1", "--nodes=1",
                   f"--nodelist={node}", f"--job-name=kernelctl-{self.name}"]
        if os.environ.get("SLURM_STEP_ID"):
            # The server is itself a step holding the allocation (batchspawner's srun):
            # a step beside it must share its resources.
            options.append("--overlap")
        wanted = self.wanted.get("options", [])
        if not any(option.startswith("--mem") for option in wanted):
            # Without --mem a step claims memory the server's step may hold already;
            # --mem=0: the allocation's memory, shared, as the server shares it.
            options.append("--mem=0")
        self.job = job
        command = ["srun", *options, *wanted, *self._launch_args()]
        self._say(f"kernelctl: starting the kernel as a step of job {job}: {' '.join(command)}")
        self.srun = subprocess.Popen(command,
                                     env=self._slurm_env(), stdin=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, errors="replace")
        self.srun_said = []
        threading.Thread(target=self._read_srun, daemon=True).start()

    def _read_srun(self):
        for line in self.srun.stderr:
            sys.stderr.write(line)
            sys.stderr.flush()
            self.srun_said.append(line.strip())

    def _submit_job(self):
        command = ["sbatch", "--parsable", f"--job-name=kernelctl-{self.name}",
                   "--export=ALL", f"--output={os.path.join(self.run_dir, 'job.out')}",
                   *self.wanted.get("options", []), *self._launch_args()]
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=self._slurm_env(),
                                  stdin=subprocess.DEVNULL, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return self._end(f"sbatch could not submit the kernel's job: {exc}")
        if done.returncode != 0:
            said = done.stderr.strip().replace("sbatch: error: ", "")
            return self._end(f"Slurm refused the kernel's job: {said}. Check with: "
                             f"kernelctl doctor {self.name}")
        self.job = done.stdout.strip().split(";")[0]
        self._say(f"kernelctl: submitted Slurm job {self.job} for this kernel")

    # -- the loop

    def run(self):
        for sock in self.front.values():
            self.poller.register(sock, self.zmq.POLLIN)
        next_look = next_touch = next_file_look = 0.0
        while True:
            now = time.monotonic()
            if now >= next_touch:
                self._touch()
                next_touch = now + HEARTBEAT_EVERY
            if self.phase == "pending" and now >= next_file_look:
                # Often while a start is likely (each look is a cell's wait), then once
                # a second: the run directory is on a shared filesystem.
                next_file_look = now + (0.1 if now - self.submitted_at < 30 else 1.0)
                if self._kernel_started():
                    next_look = now  # record the news now
            if now >= next_look:
                if self._look():
                    return
                next_look = now + (POLL_EVERY if self.phase != "ended" else 3600)
            if self.phase == "connecting" and now >= self.next_probe:
                self._probe()
            if os.getppid() != self.parent:
                self._say("kernelctl: the Jupyter server went away; cancelling the job")
                return
            # While the kernel starts, look often (a file): each look is a cell's wait.
            for sock, _ in self.poller.poll(100 if self.phase in ("pending", "connecting")
                                            else 500):
                self._handle(sock)
                if self.shutting_down and self.phase != "running":
                    return

    def _kernel_started(self):
        """Whether the kernel side said where it listens; then the relay connects."""
        running = read_json(os.path.join(self.run_dir, "running.json"))
        if not running:
            return False
        self._connect_back(running)
        self.step = running.get("step")
        self.phase = "connecting"
        self.state.update(node=running.get("node"))
        self._probe()
        return True

    def _look(self):
        """Follow the job (Slurm's commands: every POLL_EVERY); True when the relay
        should stop."""
        if self.phase == "pending":
            self._follow_pending()
        elif self.phase in ("connecting", "running"):
            self._follow_running()
        self._record()
        return self.shutting_down and self.phase == "ended"

    def _probe(self):
        """Ask the kernel for kernel_info on the relay's own account: its reply on iopub
        says the relay's subscription is live (a PUB drops what is sent before)."""
        message = self.signer.message("kernel_info_request", {})
        self.probes.add(json.loads(message[message.index(DELIM) + 2])["msg_id"])
        self.back["shell"].send_multipart(message)
        self.next_probe = time.monotonic() + 0.3

    def _kernel_is_up(self):
        """The kernel answers, and its iopub reaches the relay: the cells go to it."""
        self.phase = "running"
        waited = int(time.monotonic() - self.submitted_at)
        if self.waiting_cells:
            self._tell_waiting(f"kernelctl: the job started on {self.state.get('node')}"
                               f" after {waited} s; running the cell\n")
        self._flush_queued()
        self._follow_running()
        self._record()  # list and show say RUNNING from the first cell on

    def _follow_pending(self):
        if self.step_mode:
            if self.srun is not None and self.srun.poll() is not None:
                said = " ".join(self.srun_said[-3:]) or f"srun exited ({self.srun.returncode})"
                return self._end(f"the job step ended before the kernel started: {said}")
            waiting = [line for line in self.srun_said if "retrying" in line or "queued" in line]
            self.state.update(state="PENDING" if waiting else "STARTING",
                              reason=waiting[-1] if waiting else "")
        elif self.job:
            state, reason, node, left = job_state(self.job)
            self.state.update(state=state, reason=reason, node=node, time_left=left)
            if finished(state):
                return self._end(self._ended_text(state, reason))
        else:
            return
        timeout = float(self.wanted.get("start_timeout") or 0)
        waited = time.monotonic() - self.submitted_at
        if timeout and waited > timeout:
            self._stop_job()
            return self._end(
                f"the kernel's Slurm {'step' if self.step_mode else 'job ' + str(self.job)} "
                f"did not start within {int(timeout)} s (--start-timeout); it waited for: "
                f"{self.state.get('reason') or self.state.get('state')}. It was cancelled. "
                "Restart the kernel to try again, or ask for less "
                f"(kernelctl slurm {self.name} ...).")
        said = f"{self.state.get('state')} ({self.state.get('reason') or 'starting'})"
        if said != self.last_said and self.waiting_cells:
            self._tell_waiting(self._waiting_text().rstrip("\n")
                               + f", {int(waited)} s so far\n")
            self.last_said = said

    def _follow_running(self):
        if self.step_mode:
            if self.srun.poll() is None:
                self.state.update(state="RUNNING", reason="")
                return
            cancelled = [line for line in self.srun_said if "CANCELLED" in line]
            how = cancelled[-1].strip("* ") if cancelled else \
                f"srun exited with status {self.srun.returncode}"
            return self._end(f"the kernel's Slurm step {self.job}.{self.step} ended: {how}")
        state, reason, node, left = job_state(self.job)
        self.state.update(state=state, reason=reason, node=node, time_left=left)
        if finished(state):
            self._end(self._ended_text(state, reason))

    def _ended_text(self, state, reason):
        why = {"CANCELLED": "it was cancelled (scancel)", "TIMEOUT": "it reached its time "
               "limit", "FAILED": "it failed", "NODE_FAIL": "its node failed", "OUT_OF_MEMORY":
               "it ran out of memory", "COMPLETED": "the kernel exited",
               "PREEMPTED": "it was preempted", "GONE": "Slurm no longer knows it"}
        said = self._launcher_said()
        return (f"the kernel's Slurm job {self.job} ended: {state}, "
                f"{why.get(state, 'see its output')}"
                + (f" ({reason})" if reason and reason != "None" else "")
                + (f". On its node: {said}" if said else ""))

    def _launcher_said(self):
        """What the launcher said in the job when the kernel could not run there (its
        base not on that node, say)."""
        try:
            with open(os.path.join(self.run_dir, "job.out"), errors="replace") as out:
                lines = [line.strip() for line in out if "kernelctl-launch.sh:" in line]
        except OSError:
            return ""
        return lines[-1].split("kernelctl-launch.sh:", 1)[1].strip() if lines else ""

    # -- messages

    def _handle(self, sock):
        channel = next((c for c, s in self.front.items() if s is sock), None)
        frames = sock.recv_multipart()
        if channel is None:  # from the kernel
            back_channel = next(c for c, s in self.back.items() if s is sock)
            self._from_kernel(back_channel, frames)
        elif channel == "hb":
            sock.send_multipart(frames)  # the relay is alive; the kernel's end is followed
        elif self.phase == "running" and channel in self.back:
            parsed = parse(frames)
            if parsed and parsed[1].get("msg_type") == "execute_request":
                self.running_cell = parsed[1]
            if parsed and parsed[1].get("msg_type") == "shutdown_request":
                self.shutting_down = True
            self.back[channel].send_multipart(frames)
        else:
            self._answer_here(channel, frames)

    def _from_kernel(self, channel, frames):
        parsed = parse(frames)
        parent_id = parsed[2].get("msg_id") if parsed else None
        if parent_id in self.probes:  # the relay's own probe: not the client's business
            if channel == "iopub" and self.phase == "connecting":
                self._kernel_is_up()
            return
        if channel == "iopub":
            kind = parsed[1].get("msg_type") if parsed else None
            # The client was told the kernel is there; a "starting" now would make it
            # think the kernel restarted.
            if kind == "iopub_welcome" or kind == "status" and b'"starting"' in frames[-1]:
                return
            self.front["iopub"].send_multipart(frames)
            return
        self.front[channel].send_multipart(frames)
        if parsed and parsed[1].get("msg_type") == "shutdown_reply":
            self.shutting_down = True
            self.phase = "ended"  # the kernel stops; the relay follows

    def _answer_here(self, channel, frames):
        """What the relay answers itself while the kernel is not up (or has ended)."""
        parsed = parse(frames)
        if not parsed:
            return
        idents, header, _ = parsed
        kind = header.get("msg_type", "")
        if kind == "kernel_info_request":
            self._reply(channel, idents, header, "kernel_info_reply", self._kernel_info())
        elif kind == "shutdown_request":
            self.shutting_down = True
            self._stop_job()
            self._reply(channel, idents, header, "shutdown_reply",
                        {"status": "ok", "restart": False})
        elif kind == "interrupt_request":
            self._reply(channel, idents, header, "interrupt_reply", {"status": "ok"})
            for cell_channel, cell in list(self.queued):
                parsed_cell = parse(cell)
                if parsed_cell and parsed_cell[1].get("msg_type") == "execute_request":
                    self.queued.remove((cell_channel, cell))
                    self._fail_cell(parsed_cell, "interrupted while waiting for the job")
        elif self.phase == "ended":
            if kind == "execute_request":
                self._fail_cell(parsed, self.why_ended)
            elif kind.endswith("_request"):
                self._reply(channel, idents, header, kind[:-8] + "_reply",
                            {"status": "error", "ename": "KernelJobEnded",
                             "evalue": self.why_ended, "traceback": []})
        else:
            self.queued.append((channel, frames))
            if kind == "execute_request":
                self.waiting_cells.append(header)
                self._publish("status", {"execution_state": "busy"}, header)
                self._publish("stream", {"name": "stderr", "text": self._waiting_text()},
                              header)

    def _waiting_text(self):
        what = f"a step of Slurm job {self.job}" if self.step_mode else f"Slurm job {self.job}"
        state = self.state.get("state") or "submitted"
        reason = self.state.get("reason")
        return f"kernelctl: waiting for {what}: {state}" + \
            (f" ({reason})" if reason else "") + "\n"

    def _fail_cell(self, parsed, why):
        idents, header, _ = parsed
        self._publish("status", {"execution_state": "busy"}, header)
        self._publish("error", {"ename": "KernelJobEnded", "evalue": why,
                                "traceback": [f"KernelJobEnded: {why}"]}, header)
        self._reply("shell", idents, header, "execute_reply",
                    {"status": "error", "ename": "KernelJobEnded", "evalue": why,
                     "traceback": [], "execution_count": None})
        self._publish("status", {"execution_state": "idle"}, header)

    def _kernel_info(self):
        version = self.binding.get("python_version", "3")
        return {"status": "ok", "protocol_version": "5.3", "implementation": "ipython",
                "implementation_version": "", "banner": f"kernelctl Slurm kernel {self.name}",
                "help_links": [], "language_info": {
                    "name": "python", "version": version, "mimetype": "text/x-python",
                    "file_extension": ".py", "pygments_lexer": "ipython3",
                    "codemirror_mode": {"name": "ipython", "version": 3},
                    "nbconvert_exporter": "python"}}

    def _reply(self, channel, idents, parent, msg_type, content):
        self._publish("status", {"execution_state": "busy"}, parent)
        self.front[channel].send_multipart(self.signer.message(msg_type, content, parent, idents))
        self._publish("status", {"execution_state": "idle"}, parent)

    def _publish(self, msg_type, content, parent=None):
        self.front["iopub"].send_multipart(self.signer.message(msg_type, content, parent))

    def _tell_waiting(self, text):
        for header in self.waiting_cells:
            self._publish("stream", {"name": "stderr", "text": text}, header)

    def _say(self, text):
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def _end(self, why):
        """The job is over (or never started): every cell says why from now on."""
        self.phase, self.why_ended = "ended", why
        self._say(f"kernelctl: {why}")
        self.state.update(state=self.state.get("state") or "ENDED", reason=why, ended=True)
        cells = self.waiting_cells + ([self.running_cell] if self.running_cell else [])
        for header in cells:
            self._publish("stream", {"name": "stderr", "text": f"kernelctl: {why}\n"}, header)
        for channel, frames in self.queued:
            parsed = parse(frames)
            if parsed and parsed[1].get("msg_type") == "execute_request":
                self._fail_cell(parsed, why)
            elif parsed:
                self._answer_here(channel, frames)
        self.queued, self.waiting_cells, self.running_cell = [], [], None
        for sock in self.back.values():
            self.poller.unregister(sock)
            sock.close(linger=0)
        self.back = {}

    def _flush_queued(self):
        for channel, frames in self.queued:
            parsed = parse(frames)
            if parsed and parsed[1].get("msg_type") == "execute_request":
                self.running_cell = parsed[1]
            self.back[channel].send_multipart(frames)
        self.queued, self.waiting_cells = [], []

    def _connect_back(self, running):
        zmq = self.zmq
        kinds = {"shell": zmq.DEALER, "control": zmq.DEALER, "stdin": zmq.DEALER,
                 "iopub": zmq.SUB}
        for channel, kind in kinds.items():
            sock = self.context.socket(kind)
            sock.linger = 0
            if kind == zmq.DEALER:
                # One identity on shell and stdin: the kernel sends input requests to the
                # identity its shell request came from.
                sock.setsockopt(zmq.IDENTITY, b"kernelctl-relay-" + SESSION.encode())
            else:
                sock.setsockopt(zmq.SUBSCRIBE, b"")
            sock.connect(f"tcp://{running['ip']}:{running['ports'][channel]}")
            self.back[channel] = sock
            self.poller.register(sock, zmq.POLLIN)

    # -- state and the end

    def _touch(self):
        path = os.path.join(self.run_dir, "alive")
        with open(path, "a"):
            os.utime(path)

    def _record(self):
        write_json(os.path.join(self.run_dir, "state.json"), {
            "kernel": self.name, "mode": "step" if self.step_mode else "job",
            "job": self.job, "step": self.step, "relay_pid": os.getpid(),
            "relay_started": start_time(os.getpid()), "phase": self.phase,
            "host": socket.gethostname().split(".")[0],
            "state": self.state.get("state"), "reason": self.state.get("reason"),
            "node": self.state.get("node"), "time_left": self.state.get("time_left"),
            "updated": time.time()})

    def _stop_job(self, grace=0.0):
        """Cancel the step or job; `grace`: seconds a step may take to end by itself
        (after a shutdown_request the kernel exits, and srun with it)."""
        if self.srun is not None and self.srun.poll() is None:
            try:
                self.srun.wait(grace)
                return
            except subprocess.TimeoutExpired:
                self.srun.terminate()  # srun cancels its step
            try:
                self.srun.wait(5)
            except subprocess.TimeoutExpired:
                cancel(self.job, self.step)
                self.srun.kill()
        elif self.job and not self.step_mode:
            cancel(self.job)

    def close(self):
        self._stop_job(grace=2.0 if self.shutting_down else 0.0)
        if not self.step_mode and self.job:
            deadline = time.monotonic() + 3  # jupyter_client waits 5 s before SIGKILL
            while time.monotonic() < deadline and not finished(job_state(self.job)[0]):
                time.sleep(0.3)
        self.state["state"] = "ENDED"
        self.phase = "ended"
        self._record()
        self.context.destroy(linger=500)


def relay(kernel_dir, argv):
    connection_file = argv[argv.index("-f") + 1]
    instance = Relay(kernel_dir, connection_file)

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # interrupts are messages
    try:
        instance.start()
        instance.run()
    finally:
        instance.close()


# ---------------------------------------------------------------- where the compute is

def kernel_side(run_dir, kernel_dir):
    """Run the kernel here, on ports of this node, and stop it when the relay is gone."""
    request = read_json(os.path.join(run_dir, "request.json")) or {}
    loopback = request.get("loopback")
    host = socket.gethostname()
    ip = "127.0.0.1" if loopback else socket.gethostbyname(host)
    ports = {channel: free_port(ip) for channel in CHANNELS}
    connection = {"ip": ip, "transport": request.get("transport", "tcp"),
                  "key": request.get("key", ""),
                  "signature_scheme": request.get("signature_scheme", "hmac-sha256"),
                  "kernel_name": os.path.basename(kernel_dir.rstrip("/")),
                  **{f"{channel}_port": port for channel, port in ports.items()}}
    connection_file = os.path.join(run_dir, "kernel-connection.json")
    write_json(connection_file, connection)
    signal.signal(signal.SIGINT, lambda *_: None)  # ipykernel signals its process group
    child = subprocess.Popen(["/bin/sh", os.path.join(kernel_dir, "kernelctl-launch.sh"),
                              "--kernelctl-here", "-f", connection_file])

    def stop(signum, frame):
        child.terminate()

    signal.signal(signal.SIGTERM, stop)
    write_json(os.path.join(run_dir, "running.json"), {
        "ip": ip, "ports": ports, "node": host.split(".")[0],
        "job": os.environ.get("SLURM_JOB_ID"), "step": os.environ.get("SLURM_STEP_ID"),
        "pid": child.pid})
    while child.poll() is None:
        try:
            stale = time.time() - os.path.getmtime(os.path.join(run_dir, "alive"))
        except OSError:
            stale = HEARTBEAT_STALE + 1
        if stale > HEARTBEAT_STALE:
            sys.stderr.write("kernelctl: the relay on the server's node is gone; stopping\n")
            child.terminate()
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
            break
        time.sleep(1)
    return child.wait()


def free_port(ip):
    with socket.socket() as sock:
        sock.bind((ip, 0))
        return sock.getsockname()[1]


def janitor(run_dir, relay_pid):
    """Cancel the relay's job when the relay is gone, however it went; then its files."""
    started = start_time(relay_pid)
    while alive(relay_pid, started):
        time.sleep(1)
    state = read_json(os.path.join(run_dir, "state.json")) or {}
    if state.get("relay_pid") not in (None, relay_pid):
        return  # a newer relay (a restart) owns the directory now
    cancel(state.get("job"), state.get("step") if state.get("mode") == "step" else None)
    for name in ("state.json", "running.json", "kernel-connection.json", "request.json",
                 "alive", "job.out"):
        try:
            os.unlink(os.path.join(run_dir, name))
        except OSError:
            pass
    try:
        os.rmdir(run_dir)
    except OSError:
        pass


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "relay":
        relay(sys.argv[2], sys.argv[3:])
    elif role == "kernel":
        sys.exit(kernel_side(sys.argv[2], sys.argv[3]))
    elif role == "janitor":
        janitor(sys.argv[2], int(sys.argv[3]))
