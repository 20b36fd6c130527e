"""The ``ssh`` transport: the OpenSSH client, so ``~/.ssh/config``, keys, agents and jump hosts just work.

- **Argument lists only.** Local commands are argument lists; the one string ssh hands the remote shell is
  built with :func:`shlex.join`, so no name or path ever reaches a shell unquoted.
- **One connection.** A ControlMaster socket in a private local folder is reused by every call of the run.
- **Once per content hash.** The agent bundle, models and test sets are copied into a remote work folder
  named by their sha256 and never sent twice; the agent checks the model's hash again before loading it.
- **Retries.** A call that fails for a connection reason (refused, timed out, dropped mid-job) is retried
  with exponential backoff; a job retried after a drop resumes on the device (the agent reuses the passes
  already finished and waits for a still-running first attempt), so nothing received is lost or measured
  twice. Authentication and host-key failures are not retried: they need the user.
- **Clean-up.** The remote work folder of the run is removed on :meth:`close` (``keep_workdir`` keeps it).
  An agent outlives its ssh connection (no terminal, so no SIGHUP: that is what lets a retry after a drop find
  the passes done), so each records its pid in its job folder, and :meth:`close` stops (TERM, then KILL) the
  agents of the jobs still in flight: a run stopped by Ctrl-C or ``kill`` leaves nothing measuring on the device
  beside the run that resumes it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shlex
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path, PurePosixPath
from typing import IO, Any

from edgebench.agent.protocol import Job, TestSet
from edgebench.errors import ConfigError, DeviceError
from edgebench.targets import TRANSPORTS
from edgebench.targets.base import Transport, read_result

log = logging.getLogger(__name__)

#: runs the agent's argv after appending its pid to the file ``$1`` (``exec`` keeps the shell's pid), unless the
#: run already stopped the agents of that folder (its ``.stop`` marker): pid first, marker second, while
#: :data:`_STOP_AGENTS` writes the marker first and reads the pids second, so an agent starting as the run closes
#: is either among the pids stopped or sees the marker, never neither
_RECORD_PID = 'echo $$ >> "$1"; [ -e "${1%/*}/.stop" ] && exit 130; shift; exec "$@"'
#: stops the agents whose pids the files ``$2...`` hold, if their command line names the bundle ``$1`` (where
#: /proc tells: a pid reused since is left alone): TERM, up to 5 s to exit, then KILL
_STOP_AGENTS = """b=$1; shift; pids=
for f do
  : > "${f%/*}/.stop" 2>/dev/null
  [ -f "$f" ] || continue
  for p in $(cat "$f"); do
    if [ -r "/proc/$p/cmdline" ]; then tr '\\0' ' ' < "/proc/$p/cmdline" | grep -qF -- "$b" || continue; fi
    kill -TERM "$p" 2>/dev/null && pids="$pids $p"
  done
done
for i in 1 2 3 4 5; do
  alive=; for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
  [ -z "$alive" ] && exit 0; sleep 1
done
for p in $pids; do kill -KILL "$p" 2>/dev/null; done; exit 0"""

#: ssh's stderr for failures worth a retry (the network), and for ones that need the user
_TRANSIENT = ("Connection refused", "Connection timed out", "timed out", "Connection reset", "Broken pipe",
              "closed by remote host", "Connection closed", "not responding", "No route to host",
              "Network is unreachable", "read from master failed", "mux_client", "Control socket",
              "kex_exchange_identification", "lost connection")
_FATAL = {
    "Permission denied": "the device refused the login (Permission denied): check user, identity_file or your "
                         "ssh-agent, and that the key is in the device's authorized_keys",
    "Host key verification failed": "host key verification failed: connect once by hand (ssh HOST) to accept "
                                    "the device's key, or fix known_hosts",
    "Could not resolve hostname": "the host name does not resolve: fix 'host' in [transport] or ~/.ssh/config",
    "Bad configuration option": "ssh rejected an option: fix ssh_options / ssh_config in [transport]",
    "No space left on device": "the device's disk is full: free space in the work folder or set 'workdir' in "
                               "[transport] to a larger disk",
    "Disk quota exceeded": "the device's disk quota is exceeded: free space or set 'workdir' in [transport]",
}


@TRANSPORTS.register("ssh")
class SshTransport(Transport):
    """Runs the agent bundle on a device reached with ``ssh``."""

    @dataclasses.dataclass(frozen=True)
    class Options:
        """``[transport]`` keys of an ssh target.

        host: a host name, address or ``~/.ssh/config`` alias (required). user, port, identity_file: as ssh's
        ``-l``, ``-p``, ``-i`` (unset: ssh's own defaults and config). ssh_config: a config file instead of
        ``~/.ssh/config`` (``-F``). ssh_options: extra ``-o`` settings, e.g. ``["ProxyJump=gateway"]``.
        workdir: the remote folder (relative to the login's home, or absolute) under which each run makes and
        later removes its own folder. connect_timeout_s, retries, backoff_s: connection timeout, retries of
        a failed call and the first wait between them (doubling). keep_workdir: leave the run's folder.
        ssh: the ssh client to run.
        """

        host: str
        user: str = ""
        port: int = 0
        identity_file: str = ""
        ssh_config: str = ""
        ssh_options: list[str] = dataclasses.field(default_factory=list)
        workdir: str = ".cache/edgebench-agent"
        connect_timeout_s: float = 10.0
        retries: int = 3
        backoff_s: float = 1.0
        keep_workdir: bool = False
        ssh: str = "ssh"

    @classmethod
    def check_options(cls, options: dict[str, Any], *, where: str) -> Any:
        opts = super().check_options(options, where=where)
        if not opts.host or opts.host.startswith("-") or any(c.isspace() for c in opts.host):
            raise ConfigError(f"{where}: host {opts.host!r} is not a host name (no leading '-', no spaces)")
        if opts.user.startswith("-"):
            raise ConfigError(f"{where}: user {opts.user!r} must not start with '-'")
        for o in opts.ssh_options:
            if "=" not in o or o.startswith("-"):
                raise ConfigError(f"{where}: ssh_options entry {o!r} must look like 'Key=Value' (given to ssh -o)")
        if opts.retries < 0 or opts.backoff_s < 0 or opts.connect_timeout_s <= 0 or not 0 <= opts.port < 65536:
            raise ConfigError(f"{where}: retries and backoff_s must be >= 0, connect_timeout_s > 0, port 0..65535")
        return opts

    def __init__(self, target: Any, *, cache_dir: Path | None = None) -> None:
        super().__init__(target, cache_dir=cache_dir)
        self._control = Path(tempfile.mkdtemp(prefix="eb-ssh-"))  # short: unix socket paths max ~100 bytes
        workdir = self.options.workdir.removeprefix("~/")
        self.session = str(PurePosixPath(workdir) / f"run-{uuid.uuid4().hex[:12]}")
        self._present: set[str] = set()  # remote blobs known to exist
        self._hashes: dict[tuple[str, int, int], str] = {}
        self.retries_used = 0
        self.uploaded: list[str] = []  # remote paths copied, in order (each content hash at most once)
        self._closed = False
        self._inflight: set[str] = set()  # the remote job folders of the jobs running now

    # ---------------------------------------------------------------------------------------- ssh calls
    def _argv(self, remote: list[str]) -> list[str]:
        o = self.options
        argv = [o.ssh, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={max(1, round(o.connect_timeout_s))}",
                "-o", "ControlMaster=auto", "-o", f"ControlPath={self._control}/%C", "-o", "ControlPersist=300",
                "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]
        if o.ssh_config:
            argv += ["-F", o.ssh_config]
        if o.port:
            argv += ["-p", str(o.port)]
        if o.identity_file:
            argv += ["-i", o.identity_file]
        if o.user:
            argv += ["-l", o.user]
        for opt in o.ssh_options:
            argv += ["-o", opt]
        return [*argv, "--", o.host, shlex.join(remote)]

    def _classify(self, rc: int, stderr: str) -> tuple[str, bool] | None:
        """``(message, retry)`` for a failure of ssh itself (or of the remote disk), None otherwise."""
        for needle, msg in _FATAL.items():
            if needle in stderr:
                return msg, False
        if rc == 255:
            lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
            if not lines:  # what ssh says when the remote command died from a signal
                return "the agent was killed by a signal (out of memory, or killed on the device)", True
            return lines[-1], any(n in stderr for n in _TRANSIENT)
        return None

    def _call(self, remote: list[str], *, stdin: IO[bytes] | None = None, timeout: float | None = None,
              what: str, retry: bool = True) -> subprocess.CompletedProcess[bytes]:
        """Run ``remote`` on the device; retry connection failures with backoff; raise one clear line."""
        o = self.options
        attempts = 1 + (o.retries if retry else 0)
        for attempt in range(attempts):
            if self._closed and retry:  # stopped while this job ran: no new agent behind the run's back
                raise DeviceError(f"{self.label}: {what} on {o.host} was stopped (the run is closing)")
            if stdin is not None:
                stdin.seek(0)
            try:
                proc = subprocess.run(self._argv(remote), stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                      capture_output=True, timeout=timeout or self.target.timeout_s, check=False)
            except FileNotFoundError:
                raise DeviceError(f"{self.label}: the ssh client {o.ssh!r} is not installed here "
                                  "(apt-get install openssh-client)") from None
            except subprocess.TimeoutExpired:
                raise DeviceError(f"{self.label}: {what} ran over {timeout or self.target.timeout_s:g} s "
                                  f"(timeout_s in {self.target.source})") from None
            stderr = proc.stderr.decode(errors="replace")
            failure = self._classify(proc.returncode, stderr)
            if failure is None:
                return proc
            message, transient = failure
            if not transient or attempt == attempts - 1:
                tried = f" after {attempt + 1} attempts" if attempt else ""
                raise DeviceError(f"{self.label}: {what} on {o.host}: {message}{tried}")
            wait = o.backoff_s * 2 ** attempt
            self.retries_used += 1
            log.warning("%s: %s on %s failed (%s); retrying in %.1f s (%d/%d)", self.label, what, o.host, message,
                        wait, attempt + 1, o.retries)
            time.sleep(wait)
        raise AssertionError("unreachable")

    def _sh(self, script: str, *args: str, **kw: Any) -> subprocess.CompletedProcess[bytes]:
        """A POSIX sh script with positional arguments (never interpolated into the script)."""
        return self._call(["sh", "-c", script, "sh", *args], **kw)

    # ------------------------------------------------------------------------------------------- files
    def _sha(self, path: Path) -> str:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in self._hashes:
            from edgebench.agent.protocol import sha256_file

            self._hashes[key] = sha256_file(path)
        return self._hashes[key]

    def _upload(self, files: dict[str, Path]) -> None:
        """Copy each local file to its remote path unless already there (names are content hashes)."""
        wanted = {r: p for r, p in files.items() if r not in self._present}
        if not wanted:
            return
        proc = self._sh('for f do [ -f "$f" ] && printf "%s\\n" "$f"; done; exit 0', *wanted, what="listing files",
                        timeout=60 + self.options.connect_timeout_s)
        have = set(proc.stdout.decode().splitlines())
        for remote, local in wanted.items():
            if remote not in have:
                with open(local, "rb") as f:
                    proc = self._sh('mkdir -p "$(dirname "$1")" && cat > "$1.part" && mv -f "$1.part" "$1"', remote,
                                    stdin=f, what=f"copying {local.name}")
                if proc.returncode != 0:
                    raise DeviceError(f"{self.label}: copying {local} to {self.options.host}:{remote} failed: "
                                      f"{_last(proc.stderr)}")
                self.uploaded.append(remote)
            self._present.add(remote)

    def _fetch(self, remote: str, local: Path) -> None:
        proc = self._call(["cat", "--", remote], what=f"fetching {PurePosixPath(remote).name}")
        if proc.returncode != 0:
            raise DeviceError(f"{self.label}: cannot read {self.options.host}:{remote}: {_last(proc.stderr)}")
        tmp = local.with_name(local.name + ".part")
        tmp.write_bytes(proc.stdout)
        os.replace(tmp, local)

    def _blob(self, path: Path, companions: tuple[str, ...] = ()) -> tuple[str, dict[str, Path]]:
        """Remote path of ``path`` in the content-addressed store, and the files to send (with companions
        such as an IR's ``.bin`` and the model card, kept side by side under the same stem)."""
        group = [path] + [c for s in companions if (c := path.with_suffix(s)).is_file() and c != path]
        h = hashlib.sha256("".join(self._sha(p) for p in group).encode()).hexdigest()[:32]
        folder = PurePosixPath(self.session) / "blobs" / h
        files = {str(folder / f"model{''.join(p.suffixes[-2:]) if p.name.endswith('.card.json') else p.suffix}"): p
                 for p in group}
        main = str(folder / f"model{path.suffix}")
        return main, files

    def _python(self) -> str:
        return (self.target.python or "python3").removeprefix("~/")  # remote cwd is the home folder

    def _remote_bundle(self) -> str:
        local = self.bundle()
        remote = str(PurePosixPath(self.session) / local.name)
        self._upload({remote: local})
        return remote

    # ------------------------------------------------------------------------------------------- jobs
    def run_job(self, job: Job, local_out: Path) -> tuple[dict[str, Any], Path]:
        local_out.mkdir(parents=True, exist_ok=True)
        bundle = self._remote_bundle()
        artifact, files = self._blob(Path(job.artifact), (".bin", ".card.json")) if job.artifact else ("", {})
        refs = []
        for ref in job.artifacts:  # a latency job's artifacts
            remote, more = self._blob(Path(ref.path), (".bin", ".card.json"))
            files.update(more)
            refs.append(dataclasses.replace(ref, path=remote))
        sets = []
        for ts in job.testsets:
            p = Path(ts.path)
            remote = str(PurePosixPath(self.session) / "blobs" / f"{self._sha(p)[:32]}{p.suffix}")
            files[remote] = p
            sets.append(TestSet(ts.name, remote))
        self._upload(files)
        out = str(PurePosixPath(self.session) / "jobs" / job.job_id[:24])
        remote_job = dataclasses.replace(job, artifact=artifact, artifacts=tuple(refs), testsets=tuple(sets),
                                         output_dir=out)
        job_file = local_out / "job.json"
        job_file.write_text(remote_job.to_json())
        self._present.discard(out + "/job.json")
        self._upload({out + "/job.json": job_file})
        self._inflight.add(out)
        try:
            proc = self._call(["sh", "-c", _RECORD_PID, "sh", out + "/.agents", self._python(), bundle, "run",
                               out + "/job.json"], what=f"job {job.job_id[:12]}")
        finally:
            self._inflight.discard(out)
        result = None
        if proc.returncode in (0, 3):  # the agent wrote result.json (ok, or the error the user can fix)
            try:
                self._fetch(out + "/result.json", local_out / "result.json")
                result = read_result(local_out / "result.json")
            except DeviceError:
                result = None
        if proc.returncode != 0 or result is None or result.get("status") != "ok":
            raise self.job_failure(proc.returncode, proc.stderr.decode(errors="replace"), result, job)
        for name in result.get("files", []):
            self._fetch(f"{out}/{name}", local_out / name)
        return result, local_out

    def info(self) -> dict[str, Any]:
        bundle = self._remote_bundle()
        proc = self._call([self._python(), bundle, *self.info_args(self.session)], what="info")
        if proc.returncode != 0:
            raise self.job_failure(proc.returncode, proc.stderr.decode(errors="replace"), None,
                                   Job("info", "", "", ""))
        return json.loads(proc.stdout)

    def master_pid(self) -> int | None:
        """The pid of the shared connection's master process (None when there is none)."""
        argv = self._argv([])[:-1]
        argv[argv.index("--"):argv.index("--")] = ["-O", "check"]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10,
                              stdin=subprocess.DEVNULL)
        text = proc.stderr + proc.stdout
        if "pid=" not in text:
            return None
        return int(text.split("pid=")[1].split(")")[0])

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._stop_agents()
            if not self.options.keep_workdir and self._present:
                self._call(["rm", "-rf", "--", self.session], what="removing the work folder", retry=False,
                           timeout=60)
        except DeviceError as exc:
            log.warning("%s; remove %s on the device by hand", exc, self.session)
        finally:
            argv = self._argv([])[:-1]
            argv[argv.index("--"):argv.index("--")] = ["-O", "exit"]
            subprocess.run(argv, capture_output=True, check=False, timeout=10, stdin=subprocess.DEVNULL)
            shutil.rmtree(self._control, ignore_errors=True)

    def _stop_agents(self) -> None:
        """Stop the agents of the jobs still in flight (the run was interrupted while they measured)."""
        if not self._inflight:
            return
        bundle = str(PurePosixPath(self.session) / self.bundle().name)  # where _remote_bundle put it
        try:
            self._sh(_STOP_AGENTS, bundle, *(f"{out}/.agents" for out in list(self._inflight)),
                     what="stopping the running agents", retry=False, timeout=30 + self.options.connect_timeout_s)
        except DeviceError as exc:
            log.warning("%s; stop the agents of %s on the device by hand", exc, self.session)


def _last(stderr: bytes) -> str:
    lines = [ln for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"
