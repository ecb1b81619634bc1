"""``edgert app``: open bundles in a local web app (or, with ``--tui``, in the terminal)."""

from __future__ import annotations

import ipaddress
import socket

import click

import edgert

LOOPBACK_HINT = "anyone who can reach this machine can use the app and its models"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but loopback is reachable from the network.",
)
@click.option(
    "--port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on; 0 picks a free one (printed).",
)
@click.option(
    "--device", default=None, help="Run with this device profile instead of each bundle's."
)
@click.option(
    "--allow-fallback/--no-allow-fallback",
    default=None,
    help="Allow (reported) provider fallback; default: each profile's setting.",
)
@click.option("--tui", is_flag=True, help="The terminal front-end instead of the web server.")
def app(paths, host, port, device, allow_fallback, tui):  # fmt: skip
    """Open bundles in a local app: type and watch text stream, draw a digit, ask about a
    document, profile a bundle.

    PATHS are bundle folders or folders holding bundles (default: the current folder).
    Every page, script and style ships with edgert: the app needs no internet.

    \b
    Examples:
      edgert app demo-out                  # then open the printed address
      edgert app demo-out/speller-auto --tui
    """
    from .core import Studio

    try:
        studio = Studio(list(paths) or ["."], device=device, allow_fallback=allow_fallback)
        if not studio.entries:
            raise edgert.InputError(
                f"no bundles under {', '.join(paths) or 'the current folder'}",
                hint="export one first, e.g. `edgert export zoo:speller --device auto --out "
                "demo-out/speller-auto`, then `edgert app demo-out`",
            )
        if tui:
            from .tui import repl

            repl(studio)
            return
        _serve(studio, host, port)
    except edgert.EdgertError as exc:
        message = exc.message + (f"\nhint: {exc.hint}" if exc.hint else "")
        raise click.ClickException(message) from exc


def _serve(studio, host: str, port: int) -> None:
    try:
        import uvicorn

        from .server import create_app
    except ImportError as exc:
        raise edgert.InputError(
            f"the web app needs starlette and uvicorn ({exc.name} is not installed)",
            hint="pip install 'edgert[app]', or use `edgert app --tui`",
        ) from exc
    if not _is_loopback(host):
        click.secho(f"warning: listening on {host}: {LOOPBACK_HINT}", fg="yellow", err=True)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise edgert.InputError(f"cannot listen on {host}:{port}: {exc.strerror}",
                                hint="choose another --port (0 picks a free one)") from exc  # fmt: skip
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    click.echo(f"edgert app: {len(studio.entries)} bundle(s): {', '.join(studio.entries)}")
    click.echo(f"serving on http://{shown}:{bound}/  (Ctrl-C stops)", err=False)
    config = uvicorn.Config(create_app(studio), log_level="warning", lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
