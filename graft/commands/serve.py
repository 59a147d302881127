"""``graft serve BUNDLE``: the bundle behind an HTTP API (``POST /predict``) and a web page at ``/``.

Options come from :class:`graft.serving.config.ServeConfig` (one flag per field, with its help).

Example:
    $ graft serve runs/pets/bundle --port 8000 --max-batch-size 32 --batch-timeout 5
    $ curl -s -H 'Content-Type: image/jpeg' --data-binary @cat.jpg localhost:8000/predict
"""

from __future__ import annotations

import argparse
import logging


def register(subparsers: argparse._SubParsersAction) -> None:
    from graft.serving.config import ServeConfig
    from graft.train.cli_options import add_config_flags

    p = subparsers.add_parser(
        "serve",
        help="serve a bundle over HTTP: POST /predict, a web page, health, metrics",
        description="Serve a bundle (PyTorch or ONNX) over HTTP with dynamic batching: POST images to "
        "/predict for top-k JSON; open / in a browser to try images. Binds to 127.0.0.1 unless --host "
        "says otherwise. Needs the server extra: pip install graft-vision[serve].",
    )
    p.add_argument("bundle", help=ServeConfig.__dataclass_fields__["bundle"].metadata["help"])
    p.add_argument("--config", help="YAML file of options (flags given here win)")
    add_config_flags(p, cls=ServeConfig, skip=("bundle",))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from graft.config import load
    from graft.serving.config import ServeConfig
    from graft.serving.server import require_deps, serve
    from graft.train.cli_options import options_from_args

    require_deps()
    # a server logs each request by default; -q: errors only
    if not args.quiet and args.verbose == 0:
        logging.getLogger("graft.serve").setLevel(logging.INFO)
    options = options_from_args(args, ServeConfig)
    cfg = load(ServeConfig, args.config, {**options, "bundle": args.bundle})
    serve(cfg.bundle, config=cfg)
    return 0
