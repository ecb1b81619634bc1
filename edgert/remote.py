"""Remote profiling targets: ``edgert profile BUNDLE --target ssh://user@host[:port]``.

The bundle is copied once per content (its ``manifest.json`` lists every file's sha256, so
the manifest's own sha256 names the content) into ``~/.cache/edgert/bundles/<digest>`` on
the device, through SFTP into a staging folder renamed into place, so an interrupted copy
is never taken for a bundle. The device runs its own ``edgert profile --json`` and the
report comes back. SSH is paramiko's, with the user's keys, agent and ``known_hosts``; a
host key not in ``known_hosts`` is refused unless the user accepts new keys for this call
(then it is saved there, as ``ssh -o StrictHostKeyChecking=accept-new`` does).

A target URL may name the device's ``edgert`` command when it is not on the login
shell's PATH: ``ssh://pi@raspberry/?edgert=/home/pi/venv/bin/edgert``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import shlex
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import edgert
from edgert.errors import TargetError

CACHE = ".cache/edgert/bundles"  # under the device user's home
CONNECT_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 3600.0  # one remote command (a long profile on a slow device)


@dataclass(frozen=True)
class SshTarget:
    """Where to profile: user, host, port and the device's ``edgert`` command."""

    user: str | None
    host: str
    port: int = 22
    edgert: str = "edgert"

    @property
    def url(self) -> str:
        user = f"{self.user}@" if self.user else ""
        return f"ssh://{user}{self.host}:{self.port}"


def parse_target(text: str) -> SshTarget:
    """``ssh://[user@]host[:port][/?edgert=PATH]`` -> ``SshTarget``."""
    parts = urlsplit(text)
    try:
        port = parts.port or 22
    except ValueError:
        port = -1
    if parts.scheme != "ssh" or not parts.hostname or port < 1:
        raise TargetError(
            f"target {text!r} is not an ssh:// URL",
            hint="write ssh://user@host or ssh://user@host:port (the device needs edgert "
            "installed; ?edgert=/path/to/edgert when it is not on the login PATH)",
        )
    command = parse_qs(parts.query).get("edgert", ["edgert"])[0]
    return SshTarget(parts.username, parts.hostname, port, command)


def bundle_files(bundle: Path) -> tuple[str, list[tuple[Path, str]]]:
    """The content's name (sha256 of ``manifest.json``, which lists every file's sha256) and
    the files to copy with their names, each checked to stay inside the bundle: a manifest
    listing ``../../.ssh/authorized_keys`` would otherwise write there on the device."""
    from edgert.bundle import open_bundle, safe_member

    opened = open_bundle(bundle)  # refuses what is not a bundle, before connecting
    manifest = bundle / "manifest.json"
    files = [(manifest, "manifest.json")]
    files += [(safe_member(bundle, name), name) for name in opened.manifest["files"]]
    return hashlib.sha256(manifest.read_bytes()).hexdigest(), files


class _SaveNewKey:
    """Accept a host key that ``known_hosts`` lacks and append it there, as
    ``ssh -o StrictHostKeyChecking=accept-new`` does: the file is never rewritten (its
    comments and the entries paramiko cannot parse stay), and fleet tasks append under a
    lock."""

    def __init__(self, known: Path) -> None:
        self.known = known

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        self.known.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self.known.open("a", encoding="utf-8") as out:
            fcntl.flock(out, fcntl.LOCK_EX)
            out.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        client.get_host_keys().add(hostname, key.get_name(), key)


class Connection:
    """One SSH session to a target: commands, and bundle copies by content."""

    def __init__(self, target: SshTarget, accept_new_host_key: bool = False) -> None:
        try:
            import paramiko
        except ImportError as exc:
            raise TargetError("--target needs paramiko, which is not installed",
                              hint="pip install 'edgert[remote]'") from exc  # fmt: skip
        self.target = target
        self.client = paramiko.SSHClient()
        known = Path.home() / ".ssh" / "known_hosts"
        try:
            self.client.load_system_host_keys()
            if known.is_file():
                self.client.load_host_keys(str(known))
        except Exception as exc:  # paramiko raises InvalidHostKey, binascii errors, OSError
            raise TargetError(f"cannot read the known host keys: {type(exc).__name__}: {exc}",
                              hint=f"check {known} (and /etc/ssh/ssh_known_hosts)") from exc  # fmt: skip
        policy = _SaveNewKey(known) if accept_new_host_key else paramiko.RejectPolicy()
        self.client.set_missing_host_key_policy(policy)
        try:
            self.client.connect(
                target.host, port=target.port, username=target.user, timeout=CONNECT_TIMEOUT_S,
                banner_timeout=CONNECT_TIMEOUT_S, auth_timeout=CONNECT_TIMEOUT_S,
                allow_agent=True, look_for_keys=True,
            )  # fmt: skip
        except Exception as exc:
            self.client.close()
            raise self._refusal(exc) from exc

    def _refusal(self, exc: Exception) -> TargetError:
        """What a failed connection means for the user, and what to do."""
        import paramiko

        url = self.target.url
        if isinstance(exc, paramiko.AuthenticationException):
            return TargetError(
                f"{url} refused authentication: {exc}",
                hint="add your public key to ~/.ssh/authorized_keys on the device, or load "
                "it into ssh-agent (ssh-add); check the user name in the URL",
            )
        if isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc):
            return TargetError(
                f"{url}: the host key is not in your known_hosts, so the device cannot be "
                "told from an impostor",
                hint="connect once with ssh to check and accept its key, or pass "
                "--accept-new-host-key to accept and save it now",
            )
        if isinstance(exc, (OSError, EOFError)):
            return TargetError(
                f"cannot reach {url}: {exc}",
                hint="check the host name, the port and that the device is on and on the network",
            )
        return TargetError(f"{url}: SSH failed: {type(exc).__name__}: {exc}",
                           hint="check that an SSH server listens there")  # fmt: skip

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def run(self, command: str) -> tuple[int, str, str]:
        """Exit status, stdout and stderr of ``command`` in the login shell."""
        try:
            _, out, err = self.client.exec_command(command, timeout=COMMAND_TIMEOUT_S)
            stdout = out.read().decode("utf-8", "replace")
            stderr = err.read().decode("utf-8", "replace")
            return out.channel.recv_exit_status(), stdout, stderr
        except Exception as exc:  # a dropped link, a timeout: the session is gone
            raise TargetError(f"{self.target.url}: the connection failed during "
                              f"{command.split()[0]!r}: {type(exc).__name__}: {exc}",
                              hint="check the device and the network, then run it again") from exc  # fmt: skip

    def check_edgert(self) -> str:
        """The device's edgert version; refused when missing or not this one's."""
        status, out, err = self.run(f"{shlex.quote(self.target.edgert)} --version")
        if status != 0:
            raise TargetError(
                f"edgert does not run on {self.target.url} ({self.target.edgert!r}: "
                f"{(err or out).strip() or f'exit status {status}'})",
                hint=f"pip install edgert=={edgert.__version__} on the device, or name its "
                "command: ssh://user@host/?edgert=/path/to/bin/edgert",
            )
        version = out.strip().rsplit(" ", 1)[-1]
        if version != edgert.__version__:
            raise TargetError(
                f"{self.target.url} runs edgert {version}; this is edgert {edgert.__version__}, "
                "and a bundle and its report must come from one version",
                hint=f"pip install edgert=={edgert.__version__} on the device",
            )
        return version

    def upload(self, content: tuple[str, list[tuple[Path, str]]]) -> str:
        """The folder on the device of a bundle's ``content`` (``bundle_files``), copied
        there unless it already is."""
        digest, files = content
        _, home, _ = self.run('printf %s "$HOME"')
        final = f"{home}/{CACHE}/{digest[:32]}"
        if self.run(f"test -f {shlex.quote(final)}/manifest.json")[0] == 0:
            return final
        staging = f"{final}.partial-{uuid.uuid4().hex[:8]}"
        folders = sorted({str(Path(staging, name).parent) for _, name in files})
        err = ""
        try:
            self.run("mkdir -p " + " ".join(shlex.quote(f) for f in folders))
            with contextlib.closing(self.client.open_sftp()) as sftp:
                for path, name in files:
                    sftp.put(str(path), f"{staging}/{name}")
            _, _, err = self.run(f"mv -T {shlex.quote(staging)} {shlex.quote(final)}")
        except TargetError:
            raise
        except Exception as exc:
            raise TargetError(f"copying the bundle to {self.target.url} failed: {exc}",
                              hint="check the free space and permissions of ~/.cache there") from exc  # fmt: skip
        finally:
            with contextlib.suppress(TargetError):  # left behind by a failure or a lost race
                self.run(f"rm -rf {shlex.quote(staging)}")
        if self.run(f"test -f {shlex.quote(final)}/manifest.json")[0] != 0:
            raise TargetError(f"could not place the bundle on {self.target.url}: {err.strip()}",
                              hint="check the free space and permissions of ~/.cache there")  # fmt: skip
        return final


def profile_remote(
    bundle: Path, target: SshTarget, arguments: list[str], *, draft: Path | None = None,
    accept_new_host_key: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """``edgert profile`` of ``bundle`` run on ``target``; its report, with ``target`` added.

    ``arguments``: the profile flags to pass on (not the bundle, ``--json`` or ``--output``);
    a ``draft`` bundle is copied like the bundle and passed as ``--draft``.
    """
    content = bundle_files(bundle)  # checked before connecting
    draft_content = bundle_files(draft) if draft else None
    with Connection(target, accept_new_host_key) as connection:
        connection.check_edgert()
        where = connection.upload(content)
        extra = ["--draft", connection.upload(draft_content)] if draft_content else []
        command = " ".join(shlex.quote(a) for a in
                           [target.edgert, "profile", where, *arguments, *extra, "--json"])  # fmt: skip
        status, out, err = connection.run(command)
    if status != 0:
        said = (
            "\n".join(line for line in err.splitlines() if line.strip()) or f"exit status {status}"
        )
        raise TargetError(f"{target.url} refused to profile the bundle:\n{said}",
                          hint="the lines above are the device's own error and hint")  # fmt: skip
    try:
        report = json.loads(out)
    except json.JSONDecodeError as exc:
        raise TargetError(f"{target.url} printed no JSON report: {out[:200]!r}",
                          hint="run edgert profile BUNDLE --json on the device to see why") from exc  # fmt: skip
    report["target"] = target.url
    return report
