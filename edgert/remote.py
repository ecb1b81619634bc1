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


def bundle_digest(bundle: Path) -> str:
    """The content's name: sha256 of ``manifest.json``, which lists every file's sha256."""
    return hashlib.sha256((bundle / "manifest.json").read_bytes()).hexdigest()


class Connection:
    """One SSH session to a target: commands, and bundle copies by content."""

    def __init__(self, target: SshTarget, accept_new_host_key: bool = False) -> None:
        import paramiko

        self.target = target
        self.client = paramiko.SSHClient()
        known = Path.home() / ".ssh" / "known_hosts"
        self.client.load_system_host_keys()
        if known.is_file():
            self.client.load_host_keys(str(known))
        policy = paramiko.AutoAddPolicy() if accept_new_host_key else paramiko.RejectPolicy()
        self.client.set_missing_host_key_policy(policy)
        try:
            self.client.connect(
                target.host, port=target.port, username=target.user, timeout=CONNECT_TIMEOUT_S,
                banner_timeout=CONNECT_TIMEOUT_S, auth_timeout=CONNECT_TIMEOUT_S,
                allow_agent=True, look_for_keys=True,
            )  # fmt: skip
        except paramiko.AuthenticationException as exc:
            raise TargetError(
                f"{target.url} refused authentication: {exc}",
                hint="add your public key to ~/.ssh/authorized_keys on the device, or load "
                "it into ssh-agent (ssh-add); check the user name in the URL",
            ) from exc
        except paramiko.SSHException as exc:
            if "not found in known_hosts" in str(exc):
                raise TargetError(
                    f"{target.url}: the host key is not in your known_hosts, so the device "
                    "cannot be told from an impostor",
                    hint="connect once with ssh to check and accept its key, or pass "
                    "--accept-new-host-key to accept and save it now",
                ) from exc
            raise TargetError(f"{target.url}: SSH failed: {exc}",
                              hint="check that an SSH server listens there") from exc  # fmt: skip
        except (TimeoutError, OSError) as exc:
            raise TargetError(
                f"cannot reach {target.url}: {exc}",
                hint="check the host name, the port and that the device is on and on the network",
            ) from exc
        if accept_new_host_key:
            known.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.client.save_host_keys(str(known))

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def run(self, command: str) -> tuple[int, str, str]:
        """Exit status, stdout and stderr of ``command`` in the login shell."""
        _, out, err = self.client.exec_command(command)
        stdout, stderr = (
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
        )
        return out.channel.recv_exit_status(), stdout, stderr

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

    def upload(self, bundle: Path) -> str:
        """The bundle's folder on the device, copied there unless its content already is."""
        digest = bundle_digest(bundle)
        _, home, _ = self.run('printf %s "$HOME"')
        final = f"{home}/{CACHE}/{digest[:32]}"
        if self.run(f"test -f {shlex.quote(final)}/manifest.json")[0] == 0:
            return final
        staging = f"{final}.partial-{uuid.uuid4().hex[:8]}"
        manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
        names = ["manifest.json", *manifest.get("files", {})]
        folders = sorted({str(Path(staging, n).parent) for n in names})
        self.run("mkdir -p " + " ".join(shlex.quote(f) for f in folders))
        sftp = self.client.open_sftp()
        try:
            for name in names:
                sftp.put(str(bundle / name), f"{staging}/{name}")
        finally:
            sftp.close()
        _, _, err = self.run(f"mv -T {shlex.quote(staging)} {shlex.quote(final)} || "
                                  f"rm -rf {shlex.quote(staging)}")  # fmt: skip
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
    with Connection(target, accept_new_host_key) as connection:
        connection.check_edgert()
        where = connection.upload(bundle)
        extra = ["--draft", connection.upload(draft)] if draft else []
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
