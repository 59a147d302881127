"""``graft serve BUNDLE``: the bundle behind an HTTP API (``POST /predict``) and a web page at ``/``.

Options come from :class:`graft.serving.config.ServeConfig` (one flag per field, with its help).
With ``--json`` one JSON document (url, host, port, model, backend, classes) is printed on stdout
once the server accepts requests; the request log stays on stderr.

Example:
    $ graft serve runs/pets/bundle --port 8000 --max-batch-size 32 --batch-timeout 5
    $ graft serve runs/pets/bundle --port 0 --json     # {"url": "http://127.0.0.1:41234", ...}
    $ curl -s -H 'Content-Type: image/jpeg' --data-binary @cat.jpg localhost:8000/predict
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from graft.commands._common import add_parser, emit
from graft.options import kwargs_of, resolve
from graft.serving.config import ServeConfig

OPTIONS = {"serve": ServeConfig}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_parser(
        subparsers,
        "serve",
        ServeConfig,
        help="serve a bundle over HTTP: POST /predict, a web page, health, metrics",
        description="Serve a bundle (PyTorch or ONNX) over HTTP with dynamic batching: POST images to "
        "/predict for top-k JSON; open / in a browser to try images. Binds to 127.0.0.1 unless --host "
        "says otherwise. Needs the server extra: pip install graft-vision[serve].",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from graft.serving.server import passive_omp, require_deps, serve

    require_deps()
    passive_omp()  # before anything imports torch
    # a server logs each request by default; -q: errors only
    if not args.quiet and args.verbose == 0:
        logging.getLogger("graft.serve").setLevel(logging.INFO)
    opts = resolve(args, ServeConfig)

    def ready(document: dict[str, Any]) -> None:
        if args.json:
            emit(args, document)

    serve(opts.bundle, on_ready=ready, **kwargs_of(opts, skip=("bundle",)))
    return 0
