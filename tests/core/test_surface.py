"""One coherent surface: every command's parser follows the vocabulary of docs/reference/vocabulary.md.

Walks every ``graft`` sub-command (discovered, so a new command is checked too) and checks: no old
spellings visible, ``--out`` a folder, ``--json`` on every command, help that says something (never
the field name again, the default stated at most once), every boolean an on/off pair, Lightning's
hardware flags where a model runs or a dataset is read, and options declared once (the parser, the
dataclass of :func:`graft.commands.option_classes` and the Python API's keyword arguments agree).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import subprocess
import sys
import warnings

import pytest

from graft.cli import build_parser, main
from graft.commands import option_classes
from graft.options import flag_name, help_text, resolve

# spellings that were replaced (still accepted for one release, but never shown in --help)
OLD_FLAGS = {"--random-init", "--output", "--batch", "--candidates", "--device", "--per-tensor",
             "--no-memory"}  # fmt: skip
# commands that run a model or read a dataset (export and report run on the CPU; see vocabulary.md)
HARDWARE = {"fit", "lr-find", "distill", "extract", "probe", "stats", "predict", "evaluate",
            "select", "demo", "audit", "serve"}  # fmt: skip
# ... and those that also start several processes (Lightning's strategy / num_nodes)
MULTI_PROCESS = {"fit", "lr-find", "distill", "extract", "stats", "predict", "evaluate"}
# commands with a backbone to choose; distill has its two models, --teacher and --student
MODEL = {"fit", "lr-find", "extract", "probe", "stats", "select", "demo", "audit"}
WEIGHTS = {"fit", "lr-find", "distill", "extract", "probe", "select", "audit"}
# flags that start with --batch but are not a batch size (serve: how long a batch waits)
BATCH_OK = {"--batch-size", "--batch-timeout"}


def _commands() -> dict[str, argparse.ArgumentParser]:
    """``{"fit": parser, ..., "data sample": parser}``: every leaf command."""
    out = {}
    for name, parser in _subparsers(build_parser()).items():
        nested = _subparsers(parser)
        out.update({f"{name} {n}": p for n, p in nested.items()} if nested else {name: parser})
    return out


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


COMMANDS = _commands()


def _visible(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.help != argparse.SUPPRESS and a.dest != "help"]


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {s for a in _visible(parser) for s in a.option_strings}


def test_every_command_is_found_and_has_an_options_dataclass() -> None:
    assert {"fit", "extract", "stats", "predict", "select", "data sample"} <= set(COMMANDS)
    assert set(option_classes()) == set(COMMANDS)
    assert all(dataclasses.is_dataclass(cls) for cls in option_classes().values())


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_vocabulary(command: str) -> None:
    parser = COMMANDS[command]
    flags = _flags(parser)
    assert not flags & OLD_FLAGS, f"{command} shows an old spelling: {flags & OLD_FLAGS}"
    assert "--json" in flags and "--no-json" in flags
    out = next((a for a in _visible(parser) if "--out" in a.option_strings), None)
    if out is not None:
        assert "folder" in out.help, f"{command} --out must be a folder: {out.help!r}"
    if command in HARDWARE:
        assert {"--accelerator", "--devices"} <= flags, command
    if command in MULTI_PROCESS:
        assert {"--strategy", "--num-nodes"} <= flags, command
    if command in MODEL:
        assert "--model" in flags, command
    if command in WEIGHTS:
        assert "--weights" in flags, command
    if command == "distill":
        assert {"--teacher", "--student"} <= flags and "--model" not in flags
    assert not any(f.startswith("--batch") and f not in BATCH_OK for f in flags), flags
    assert not any("worker" in f and f != "--workers" for f in flags), flags


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_says_something_once(command: str) -> None:
    for action in _visible(COMMANDS[command]):
        text = (action.help or "").replace("%%", "%")
        name = action.dest.replace("_", " ")
        assert text and text.split(" (default")[0].strip() != name, (command, action.dest, text)
        assert text.count("default") <= 1, (command, action.dest, text)
        assert action.default in (None, False) or action.dest in ("help", "version"), (
            f"{command} --{action.dest}: the parser must not hold a default of its own (the "
            "dataclass does), got {action.default!r}"
        )


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_boolean_has_an_on_off_pair(command: str) -> None:
    for action in _visible(COMMANDS[command]):
        assert not isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)), (
            f"{command} {action.option_strings}: use --x/--no-x"
        )
        if isinstance(action, argparse.BooleanOptionalAction):
            on = [s for s in action.option_strings if not s.startswith("--no-")]
            assert [f"--no-{s[2:]}" for s in on] == [
                s for s in action.option_strings if s.startswith("--no-")
            ]


@pytest.mark.parametrize("command", sorted(option_classes()))
def test_options_are_declared_once(command: str) -> None:
    """Each field has real help and exactly one argument in the command's parser."""
    cls = option_classes()[command]
    parser = COMMANDS[command]
    by_dest = {a.dest: a for a in _visible(parser)}
    for f in dataclasses.fields(cls):
        assert f.metadata.get("help") and f.metadata["help"] != f.name.replace("_", " ")
        if f.name == "data" and command in ("fit", "lr-find", "distill"):
            continue  # a positional argument of their own (fit's is optional under --resume)
        action = by_dest.get(f.name)
        assert action is not None, f"{command}: field {f.name} has no argument"
        if action.option_strings:
            assert flag_name(f) in action.option_strings
        assert help_text(f).replace("%", "%%") == action.help


# command -> (the Python API function, fields that are the CLI's own or passed positionally)
API = {
    "extract": ("graft.features:extract", {"data", "strategy", "num_nodes"}),
    "probe": ("graft.features:probe", {"data"}),
    "predict": ("graft.inference:predict", {"out"}),
    "evaluate": ("graft.inference:evaluate", set()),
    "select": ("graft.select:select_models", {"latency_budget"}),
    "report": ("graft.report:write_report", set()),
    "stats": (
        "graft.data:dataset_stats",
        {"data", "out", "accelerator", "devices", "strategy", "num_nodes"},
    ),  # fmt: skip
    "data sample": ("graft.data:sample_dataset", set()),
}


@pytest.mark.parametrize("command", sorted(API))
def test_python_api_takes_the_same_names(command: str) -> None:
    import importlib

    module, name = API[command][0].split(":")
    params = inspect.signature(getattr(importlib.import_module(module), name)).parameters
    fields = {f.name for f in dataclasses.fields(option_classes()[command])} - API[command][1]
    missing = fields - set(params)
    # positional parameters may carry another name in the function (report: run_dir, stats: source)
    positional = [p for p in params.values() if p.kind == p.POSITIONAL_OR_KEYWORD][:2]
    missing -= {f for f in missing if any(p.default is p.empty for p in positional)} & {
        "run_dir", "name", "dest", "bundle", "paths", "data"
    }  # fmt: skip
    assert not missing, f"{name}() lacks the keyword arguments {sorted(missing)}"


def test_no_name_is_both_a_function_and_a_module() -> None:
    code = (
        "import graft, graft.select.rules, types; graft.select.rules; "
        "assert all(isinstance(getattr(graft, n), types.ModuleType) "
        "for n in ('select', 'distill', 'export')); "
        "assert callable(graft.select_models) and callable(graft.distill_model) "
        "and callable(graft.export_model)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_feature_modules_and_functions_are_not_the_same_name() -> None:
    code = (
        "import graft, graft.features.extraction, graft.features.probing, types; "
        "import graft.features as f; "
        "assert callable(f.extract) and callable(f.probe); "
        "assert not isinstance(f.extract, types.ModuleType) and f.extract is graft.extract; "
        "assert f.probe is graft.probe and f.extraction.extract is f.extract; "
        "assert f.probing.Probe is f.Probe"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(
        [sys.executable, "-c", "import graft.features.extract"], capture_output=True, text=True
    )
    assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr


def test_no_public_function_shares_its_name_with_a_submodule() -> None:
    """In every package of graft: a public name is either a submodule or something else, never both."""
    import importlib
    import pkgutil
    import types

    import graft

    packages = ["graft"] + [
        m.name for m in pkgutil.walk_packages(graft.__path__, "graft.") if m.ispkg
    ]
    clashes = []
    for name in packages:
        package = importlib.import_module(name)
        for sub in pkgutil.iter_modules(package.__path__):
            if sub.name.startswith("_") or sub.name not in vars(package):
                continue
            if not isinstance(vars(package)[sub.name], types.ModuleType):
                clashes.append(f"{name}.{sub.name}")
    assert not clashes, f"both a module and another object: {clashes}"


def test_calling_an_old_function_name_warns_and_still_works(monkeypatch) -> None:
    import graft
    import graft.select

    monkeypatch.setattr(graft.select, "select_models", lambda *a, **k: ("called", a, k))
    with pytest.warns(FutureWarning, match="graft.select_models"):
        assert graft.select("data/x", seed=1) == ("called", ("data/x",), {"seed": 1})


@pytest.mark.parametrize(
    ("argv", "dest", "value", "new"),
    [
        (["extract", "d", "--random-init"], "weights", "none", "--weights none"),
        (["probe", "d", "--random-init"], "weights", "none", "--weights none"),
        (["select", "d", "--candidates", "a,b"], "model", ["a", "b"], "--model"),
        (["select", "d", "--batch", "4"], "batch_size", 4, "--batch-size"),
        (["select", "d", "--no-memory"], "memory", "off", "--memory off"),
        (["export", "b", "--per-tensor"], "per_channel", False, "--no-per-channel"),
        (["predict", "b", "x.png", "--device", "cpu"], "old_device", "cpu", "--accelerator"),
        (["audit", "d", "--device", "cuda:1"], "old_device", "cuda:1", "--accelerator"),
    ],
)
def test_old_spellings_work_with_one_warning_line(argv, dest, value, new, capsys) -> None:
    args = build_parser().parse_args(argv)
    assert getattr(args, dest) == value
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "deprecated" in err[0] and new in err[0], err


def test_old_device_flag_becomes_accelerator_and_devices() -> None:
    from graft.commands.predict import PredictOptions

    args = build_parser().parse_args(["predict", "b", "x.png", "--device", "cuda:1"])
    from graft.commands.extract import hardware_of

    opts = resolve(args, PredictOptions, **hardware_of(args, {}))
    assert (opts.accelerator, opts.devices) == ("cuda", "1,")


@pytest.mark.parametrize(("flags", "expected"), [([], True), (["--no-progress"], False),
                                              (["--no-progress", "--progress"], True)])  # fmt: skip
def test_probe_progress_pair_reaches_the_api(flags, expected, monkeypatch, capsys) -> None:
    import types

    import graft.features

    calls = []

    def fake_probe(data, **kwargs):
        calls.append((data, kwargs))
        return types.SimpleNamespace(
            classes=["a", "b"], metrics={"best_params": {}}, bundle=None, summary=lambda: "probe"
        )

    monkeypatch.setattr(graft.features, "probe", fake_probe)
    assert main(["probe", "feats/x", "--json", *flags]) == 0
    assert json.loads(capsys.readouterr().out)["classes"] == ["a", "b"]
    assert [(data, kw["progress"]) for data, kw in calls] == [("feats/x", expected)]


def test_python_keywords_old_spellings_warn() -> None:
    from graft.features.extraction import resolve_weights

    with pytest.warns(FutureWarning, match="weights="):
        assert resolve_weights("pretrained", pretrained=False) == "none"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_weights("none") == "none"


def test_config_yaml_flags_and_defaults_meet_in_one_instance(tmp_path) -> None:
    from graft.commands.extract import ExtractOptions

    config = tmp_path / "extract.yaml"
    config.write_text("batch_size: 8\npool: max\nresume: false\n")
    args = build_parser().parse_args(["extract", "d", "--config", str(config), "--pool", "none"])
    opts = resolve(args, ExtractOptions)
    assert (opts.batch_size, opts.pool, opts.resume, opts.model) == (8, "none", False,
                                                                     "efficientnet_lite0")  # fmt: skip
    config.write_text("batch_sise: 8\n")
    assert main(["extract", "d", "--config", str(config)]) == 2  # unknown key: one clean error


def test_json_is_the_only_thing_on_stdout(capsys) -> None:
    assert main(["models", "test_*", "--json"]) == 0
    names = json.loads(capsys.readouterr().out)
    assert "test_efficientnet" in names
    assert main(["models", "test_efficientnet", "--groups", "--json"]) == 0
    groups = json.loads(capsys.readouterr().out)
    assert groups[0]["index"] == 0 and groups[-1]["params"]


def test_hardware_reads_as_lightning() -> None:
    from graft.distributed import hardware, single_device
    from graft.errors import ConfigError

    assert hardware("cpu", 2).processes == 2 and hardware("cpu", "auto").processes == 1
    assert hardware("cpu", "3").device() == "cpu"
    with pytest.raises(ConfigError, match="unknown accelerator 'tpu'"):
        hardware("tpu")
    with pytest.raises(ConfigError, match="devices must be"):
        hardware("cpu", "many")
    with pytest.raises(ConfigError, match="one process on one device"):
        single_device("cpu", 2, what="predict")


def test_extract_json_and_config(tiny_folder, tmp_path, capsys) -> None:
    """One JSON document on stdout (progress and notes on stderr); the YAML keys are the flags'."""
    config = tmp_path / "extract.yaml"
    config.write_text("model: test_resnet\nweights: none\nimage_size: 32\nworkers: 0\n")
    out = tmp_path / "store"
    argv = ["extract", str(tiny_folder), "--config", str(config), "--out", str(out), "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert printed["images"] == 24 and printed["classes"] == ["blue", "green", "red"]
    assert printed["out"] == str(out) and "feature store" in captured.err
