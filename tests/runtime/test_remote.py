"""Remote profiling over SSH and fleets on Ray, against a real ``sshd`` on 127.0.0.1.

The test starts OpenSSH's server with a throw-away host key and a throw-away client key
(skipped, with the reason, where no ``sshd`` binary exists), and the client runs with a
home folder of its own, so the user's keys and known_hosts are never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.bundles import make_bundle
from helpers.cli import run

import edgert

pytest.importorskip("paramiko")
SSHD = shutil.which("sshd") or next(
    (p for p in ("/usr/sbin/sshd", "/usr/local/sbin/sshd") if Path(p).is_file()), None
)
pytestmark = pytest.mark.skipif(
    SSHD is None, reason="no sshd binary (apt-get install openssh-server)"
)
EDGERT = str(Path(sys.executable).with_name("edgert"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """A running sshd on 127.0.0.1 that takes one client key; yields its facts."""
    root = tmp_path_factory.mktemp("sshd")
    client_home, device_home = root / "client", root / "device"
    (client_home / ".ssh").mkdir(parents=True)
    device_home.mkdir()
    host_key = keygen(root / "host_key")
    client_key = keygen(client_home / ".ssh" / "id_ed25519")
    stranger = keygen(root / "stranger")
    (root / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    port = free_port()
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
        f"AuthorizedKeysFile {root / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
        f"PidFile {root / 'sshd.pid'}\nSubsystem sftp internal-sftp\n"
        f"SetEnv HOME={device_home} PYTHONPATH={os.environ.get('PYTHONPATH', '')}\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # the privilege-separation folder sshd expects
    server = subprocess.Popen([SSHD, "-D", "-e", "-f", str(root / "sshd_config")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    for _ in range(100):
        if server.poll() is not None:
            pytest.skip(f"sshd did not start: {server.stderr.read().decode()[-400:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    user = os.environ.get("USER") or __import__("getpass").getuser()
    yield {"port": port, "user": user, "client_home": client_home, "device_home": device_home,
           "stranger": stranger, "url": f"ssh://{user}@127.0.0.1:{port}/?edgert={EDGERT}"}  # fmt: skip
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def client(sshd, monkeypatch):
    """This process as the SSH client, with the throw-away key and an empty known_hosts."""
    monkeypatch.setenv("HOME", str(sshd["client_home"]))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    (sshd["client_home"] / ".ssh" / "known_hosts").unlink(missing_ok=True)
    return sshd


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("remote-bundle") / "cnn")


def test_profile_on_a_remote_device_copies_once_and_brings_the_report_back(client, bundle, capsys):
    argv = ["profile", str(bundle), "--runs", "3", "--target", client["url"], "--json"]
    code, _, err = run(capsys, *argv)
    assert code == 1 and "not in your known_hosts" in err and "--accept-new-host-key" in err
    code, out, err = run(capsys, *argv, "--accept-new-host-key")
    assert code == 0, err
    report = json.loads(out)
    assert report["target"] == f"ssh://{client['user']}@127.0.0.1:{client['port']}"
    assert report["family"] == "cnn" and report["runs"] == 3 and report["schema_version"] == 1
    copies = list((client["device_home"] / ".cache" / "edgert" / "bundles").iterdir())
    assert len(copies) == 1 and (copies[0] / "manifest.json").is_file()
    assert Path(report["bundle"]) == copies[0]
    stamp = (copies[0] / "manifest.json").stat().st_mtime_ns
    code, out, err = run(capsys, *argv)  # the host key is known now; the copy is reused
    assert code == 0, err
    assert (copies[0] / "manifest.json").stat().st_mtime_ns == stamp
    assert len(list(copies[0].parent.iterdir())) == 1  # no staging folder left behind


def test_the_devices_own_refusal_is_passed_through(client, bundle, capsys):
    code, _, err = run(capsys, "profile", str(bundle), "--target", client["url"],
                       "--accept-new-host-key", "--device", "nvidia-cuda-fp16")  # fmt: skip
    assert code == 1
    assert "refused to profile the bundle" in err and "ort-cuda" in err


@pytest.mark.parametrize("case", ["no route", "auth refused", "edgert missing", "other version"])
def test_clear_errors(case, client, bundle, tmp_path, capsys):
    url, extra = client["url"], []
    if case == "no route":
        url = f"ssh://{client['user']}@127.0.0.1:{free_port()}/"
        expected = "cannot reach"
    elif case == "auth refused":
        key = client["client_home"] / ".ssh" / "id_ed25519"
        saved = key.read_bytes(), key.with_suffix(".pub").read_bytes()
        shutil.copy(client["stranger"], key)
        shutil.copy(client["stranger"].with_suffix(".pub"), key.with_suffix(".pub"))
        expected = "refused authentication"
    elif case == "edgert missing":
        url = url.replace(f"edgert={EDGERT}", "edgert=/nowhere/bin/edgert")
        expected = "edgert does not run"
    else:
        fake = tmp_path / "edgert"
        fake.write_text("#!/bin/sh\necho 'edgert, version 0.0.1'\n")
        fake.chmod(0o755)
        url = url.replace(f"edgert={EDGERT}", f"edgert={fake}")
        expected = f"runs edgert 0.0.1; this is edgert {edgert.__version__}"
    try:
        code, _, err = run(capsys, "profile", str(bundle), "--target", url,
                           "--accept-new-host-key", *extra)  # fmt: skip
    finally:
        if case == "auth refused":
            key.write_bytes(saved[0])
            key.with_suffix(".pub").write_bytes(saved[1])
    assert code == 1
    assert expected in err and "hint:" in err


def test_a_bad_target_url_is_refused(bundle, capsys):
    code, _, err = run(capsys, "profile", str(bundle), "--target", "pi@raspberry")
    assert code == 1 and "not an ssh:// URL" in err


def test_a_fleet_profiles_every_target_on_ray_and_reports_the_one_that_fails(
    client, bundle, tmp_path, capsys
):
    pytest.importorskip("ray")
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(
        '[targets.host]\nurl = "local"\n\n'
        f'[targets.loopback]\nurl = "{client["url"]}"\naccept_new_host_key = true\n\n'
        f'[targets.gone]\nurl = "ssh://{client["user"]}@127.0.0.1:{free_port()}/"\n'
    )
    out = tmp_path / "reports"
    code, stdout, err = run(capsys, "profile", str(bundle), "--runs", "3", "--fleet", str(fleet),
                            "--fleet-out", str(out))  # fmt: skip
    assert code == 1  # one target failed
    assert "[host] done" in err and "[loopback] done" in err and "[gone] failed" in err
    assert "gone failed: cannot reach" in err
    assert sorted(p.name for p in out.iterdir()) == [
        "comparison.json",
        "gone.json",
        "host.json",
        "loopback.json",
    ]
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["failed"] == ["gone"] and len(comparison["reports"]) == 2
    host, loopback = (json.loads((out / f"{n}.json").read_text()) for n in ("host", "loopback"))
    assert host["target"] == "local" and loopback["target"].startswith("ssh://")
    assert host["runs"] == loopback["runs"] == 3
    assert "host (" in stdout and "loopback (" in stdout  # the comparison table
    code, _, _ = run(
        capsys, "profile", "compare", str(out / "host.json"), str(out / "loopback.json")
    )
    assert code == 0


def test_a_fleet_file_is_checked_before_anything_runs(bundle, tmp_path, capsys):
    fleet = tmp_path / "fleet.toml"
    fleet.write_text('[targets.pi]\nurl = "raspberry"\n')
    code, _, err = run(capsys, "profile", str(bundle), "--fleet", str(fleet))
    assert code == 1 and "not an ssh:// URL" in err
    fleet.write_text('[targets.pi]\nurl = "local"\nport = 22\n')
    code, _, err = run(capsys, "profile", str(bundle), "--fleet", str(fleet))
    assert code == 1 and "unknown keys ['port']" in err
    for name in ('"../x"', "comparison"):
        fleet.write_text(f'[targets.{name}]\nurl = "local"\n')
        code, _, err = run(capsys, "profile", str(bundle), "--fleet", str(fleet))
        assert code == 1 and "cannot name its report file" in err


def test_a_bundle_listing_paths_outside_itself_is_refused_before_connecting(
    client, bundle, tmp_path, capsys
):
    from helpers.mutations import with_manifest

    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["../../.ssh/authorized_keys"] = "0" * 64
    evil = with_manifest(bundle, tmp_path / "evil", manifest)
    code, _, err = run(capsys, "profile", str(evil), "--target", client["url"],
                       "--accept-new-host-key")  # fmt: skip
    assert code == 1 and "unsafe path" in err
    assert not (client["client_home"] / ".ssh" / "known_hosts").exists()  # never connected


def test_accepting_a_new_host_key_appends_it_and_keeps_known_hosts(client, bundle, capsys):
    known = client["client_home"] / ".ssh" / "known_hosts"
    known.write_text("# my comment\n@cert-authority *.example.com ssh-ed25519 AAAA\n")
    code, _, err = run(capsys, "profile", str(bundle), "--runs", "2", "--target", client["url"],
                       "--accept-new-host-key")  # fmt: skip
    if code:  # paramiko cannot read @cert-authority lines: a clear error, the file untouched
        assert "cannot read the known host keys" in err
        assert known.read_text().startswith("# my comment\n@cert-authority")
        known.write_text("# my comment\n")
        code, _, err = run(capsys, "profile", str(bundle), "--runs", "2", "--target",
                           client["url"], "--accept-new-host-key")  # fmt: skip
    assert code == 0, err
    lines = known.read_text().splitlines()
    assert lines[0] == "# my comment" and lines[-1].startswith(f"[127.0.0.1]:{client['port']} ")
