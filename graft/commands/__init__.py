"""One module per ``graft`` sub-command; each defines ``register(subparsers)``. See :mod:`graft.cli`."""
