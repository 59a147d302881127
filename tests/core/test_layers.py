"""Layers: lower packages never import higher ones, yet the higher ones plug in (issue #16, part 6).

- ``create_model("a+b")`` builds a hybrid through the model-source registry of ``graft.models``,
  from a fresh interpreter, without ``graft.models`` importing ``graft.hybrid`` up front;
- ``fit`` and ``evaluate`` end with ``report.html`` through the reporter ``graft.report`` installs
  (``graft.train.reporters``), which the CLI and the public ``graft.fit`` load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from torch import nn

from graft.errors import ConfigError
from graft.models import create_model, sources
from graft.train import reporters

ROOT = Path(__file__).resolve().parents[2]


def _fresh(code: str) -> dict:
    """Run ``code`` (which prints one JSON document) in a new interpreter importing this tree."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, timeout=120)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_hybrid_name_builds_from_a_fresh_interpreter() -> None:
    seen = _fresh(
        "import json, sys\n"
        "from graft.models import create_model\n"
        "before = 'graft.hybrid' in sys.modules\n"
        "m = create_model('test_efficientnet+test_vit', num_classes=3, pretrained=False)\n"
        "print(json.dumps({'before': before, 'type': type(m).__name__,\n"
        "                  'classes': m.num_classes, 'after': 'graft.hybrid' in sys.modules}))\n"
    )
    assert seen == {"before": False, "type": "HybridModel", "classes": 3, "after": True}


def test_registered_sources_build_their_names() -> None:
    built = []

    def tagged(name: str, **options) -> nn.Module:
        built.append((name, options["num_classes"], options["in_chans"]))
        return nn.Identity()

    sources.register_source("@", tagged)
    try:
        assert isinstance(create_model("any@thing", num_classes=4, in_chans=1), nn.Identity)
    finally:
        sources.unregister_source("@")
    assert built == [("any@thing", 4, 1)]
    assert sources.source_for("resnet18") is None


def test_a_source_module_that_does_not_register_is_a_clean_error(monkeypatch) -> None:
    monkeypatch.setitem(sources.SOURCE_MODULES, "%", "json")  # imports fine, registers nothing
    with pytest.raises(ConfigError, match="did not register"):
        create_model("a%b", num_classes=2, pretrained=False)


def test_train_and_inference_do_not_load_the_report_package() -> None:
    seen = _fresh(
        "import json, sys\n"
        "import graft.train.fitting, graft.inference.evaluation, graft.models.factory\n"
        "print(json.dumps([m for m in ('graft.report', 'graft.hybrid') if m in sys.modules]))\n"
    )
    assert seen == []


@pytest.mark.parametrize(
    "entry", ["import graft.cli", "import graft; graft.fit", "import graft; graft.evaluate"]
)
def test_the_entry_points_install_the_report_writer(entry: str) -> None:
    seen = _fresh(
        f"import json; {entry}\n"
        "from graft.train import reporters\n"
        "r = reporters._reporter\n"
        "print(json.dumps(r.__module__ if r else None))\n"
    )
    assert seen == "graft.report"


def test_without_a_reporter_no_page_is_written(tmp_path: Path) -> None:
    previous = reporters.set_run_reporter(None)
    try:
        assert reporters.write_run_report(tmp_path) is None
    finally:
        reporters.set_run_reporter(previous)
    assert list(tmp_path.iterdir()) == []
