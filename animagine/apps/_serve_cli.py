"""``animagine serve``: its flags, and starting the server (the app extra is imported on use)."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

from animagine.apps._generation_cli import add_model_arguments, check_model_arguments, load_model
from animagine.apps.cli import CommandError
from animagine.core import get_version, presets_for
from animagine.errors import AnimagineError

__all__ = ["arguments", "run"]


def arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` command's arguments (imports nothing heavy).

    ``--device`` may name several devices, comma-separated: the model is loaded on each and
    each gets a worker thread, all serving the one queue.
    """
    add_model_arguments(
        parser,
        default=None,
        model_help="hub id, diffusers folder or .safetensors file, as for 'generate' (default:"
        " none; the prompt tools only)",
    )
    server = parser.add_argument_group("server")
    server.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    server.add_argument(
        "--port", type=int, default=7860, help="port; 0 takes a free one (default: %(default)s)"
    )
    server.add_argument(
        "--api-auth",
        metavar="USER:PASS",
        help="HTTP basic authentication on the UI and the API (several: u1:p1,u2:p2)",
    )
    server.add_argument(
        "--cors-allow-origins",
        metavar="ORIGINS",
        help="comma-separated origins allowed to call the API from a browser (default: none)",
    )
    server.add_argument(
        "--history",
        type=Path,
        metavar="FILE",
        help="the history database (default: history.sqlite3 in the user's data folder)",
    )
    server.add_argument("--no-history", action="store_true", help="keep no history of generations")
    server.add_argument(
        "--queue-size",
        type=int,
        default=20,
        metavar="N",
        help="generation requests that may wait; more get 503 (default: %(default)s)",
    )
    server.add_argument(
        "--max-body",
        type=int,
        metavar="BYTES",
        help="largest request body (default: 32 MiB)",
    )
    server.add_argument("--wildcards", metavar="DIR", help="folder of wildcard files (__name__)")
    server.add_argument(
        "--presets", metavar="FILE", help="more presets: JSON or TOML as the demo's, or styles.csv"
    )


def run(args: argparse.Namespace) -> int:
    """Check every flag, load the model (if any), then serve until Ctrl-C."""
    from animagine.extras import require  # noqa: PLC0415

    for module in ("fastapi", "uvicorn"):
        require(module, what="animagine serve")
    from animagine.apps.serve import (  # noqa: PLC0415
        DEFAULT_MAX_BODY,
        History,
        ServeConfig,
        create_app,
        default_history_path,
        run_server,
    )

    if not 0 <= args.port <= 65535:
        raise CommandError(f"--port must be from 0 to 65535, got {args.port}")
    if args.history is not None and args.no_history:
        raise CommandError("--history and --no-history exclude each other")
    for name in ("wildcards", "presets"):
        value = getattr(args, name)
        if value is not None and not Path(value).exists():
            raise CommandError(f"--{name} {value}: no such file or folder")
    try:
        config = ServeConfig(
            api_auth=args.api_auth or (),
            cors_allow_origins=args.cors_allow_origins or (),
            queue_size=args.queue_size,
            max_body_bytes=DEFAULT_MAX_BODY if args.max_body is None else args.max_body,
            wildcards=args.wildcards,
            presets=args.presets,
        )
    except AnimagineError as error:
        raise CommandError(str(error).replace("max_body_bytes", "--max-body")) from None
    version = None if args.model_version is None else get_version(args.model_version)
    if args.wildcards is not None and not Path(args.wildcards).is_dir():
        raise CommandError(f"--wildcards {args.wildcards}: not a folder")
    if args.presets is not None:
        presets_for(version or "v4", file=args.presets)  # a file that does not read, now
    # Everything is checked before the model loads (minutes): flags, the address, the history.
    devices: list[str | None] = [None]
    if args.model is not None and args.device is not None:
        # One copy of the model per device (--device cuda:0,cuda:1), one worker thread each.
        devices = [device.strip() for device in args.device.split(",")]
        if len(set(devices)) != len(devices) or "" in devices:
            raise CommandError(f"--device {args.device!r}: each device once, comma-separated")
    if args.model is not None:
        for device in devices:
            args.device = device
            check_model_arguments(args)
    _check_address(args.host, args.port)
    history = None
    if not args.no_history:
        history = History(args.history if args.history is not None else default_history_path())
    generators = []
    if args.model is not None:
        for device in devices:
            args.device = device
            generators.append(load_model(args))
    app = create_app(
        generators or None, version=version, history=history, config=config, model=args.model
    )
    if not generators:
        print(
            "animagine serve: no --model; the prompt tools work, generation needs --model",
            file=sys.stderr,
        )
    run_server(app, host=args.host, port=args.port)
    return 0


def _check_address(host: str, port: int) -> None:
    """Bind ``host:port`` once and let go: a taken port or an unknown host, said now."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise CommandError(f"--host {host!r}: {error.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            raise CommandError(
                f"cannot listen on {host}:{port}: {error.strerror or error}"
            ) from None
