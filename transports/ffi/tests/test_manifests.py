"""validate, load, list_nodes: manifests from files, text and dicts, and their problems."""

from __future__ import annotations

import json
import pathlib

import pytest

import remotemedia
from ffi_support import PIPELINES, single

BROKEN_YAML = """\
version: v1
nodes:
  - id: level
    node_type: AudioLevelNod
  - id: resample
    node_type: FastResampleNode
    params:
      target_rate: -5
connections:
  - from: level
    to: nowhere
"""


def test_a_valid_file_has_no_errors_whether_given_as_str_or_path():
    path = PIPELINES / "audio-health.yaml"
    for source in (path, str(path)):
        problems = remotemedia.validate(source)
        assert [p for p in problems if p.severity == "error"] == []


def test_problems_name_path_node_and_line():
    problems = remotemedia.validate(BROKEN_YAML)
    by_kind = {p.kind: p for p in problems}
    unknown = by_kind["unknown_node_type"]
    assert unknown.path == "nodes[0].node_type"
    assert unknown.node_id == "level"
    assert unknown.line == 4
    assert "AudioLevelNode" in unknown.message  # the suggestion
    assert by_kind["invalid_param"].path == "nodes[1].params.target_rate"
    assert by_kind["invalid_param"].node_id == "resample"
    assert by_kind["unknown_edge_endpoint"].line == 11
    assert "nodes[0].node_type (node 'level', line 4)" in str(unknown)


def test_json_text_and_dicts_are_manifests_too():
    manifest = single("PassThrough")
    assert remotemedia.validate(manifest) == []
    assert remotemedia.validate(json.dumps(manifest)) == []
    bad = single("Nope")
    (problem,) = remotemedia.validate(bad)
    assert (problem.path, problem.node_id, problem.line) == ("nodes[0].node_type", "n", None)
    (problem,) = remotemedia.validate(json.dumps(bad, indent=2))
    assert problem.line == 9  # the line of "node_type": "Nope"


def test_syntax_errors_give_a_line():
    (problem,) = remotemedia.validate("version: v1\nnodes: [\n  {id: a,\n")
    assert problem.kind == "syntax"
    assert problem.line is not None


def test_load_raises_manifest_error_with_every_problem():
    with pytest.raises(remotemedia.ManifestError) as caught:
        remotemedia.load(BROKEN_YAML)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.source == "<string>"
    assert {p.kind for p in error.problems} >= {"unknown_node_type", "invalid_param"}
    assert error.node_id == "level"
    assert error.path == "nodes[0].node_type"
    assert "nodes[1].params.target_rate (node 'resample', line 8)" in str(error)


def test_load_gives_a_reusable_pipeline(tmp_path: pathlib.Path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(single("PassThrough", node_id="only")))
    pipeline = remotemedia.load(path)
    assert pipeline.name == "test"
    assert pipeline.node_ids == ["only"]
    assert pipeline.source == str(path)
    assert remotemedia.load(pipeline) is pipeline
    assert remotemedia.validate(pipeline) == []


def test_a_missing_file_is_an_os_error_naming_it(tmp_path: pathlib.Path):
    missing = tmp_path / "missing.yaml"
    for source in (missing, str(missing)):
        with pytest.raises(FileNotFoundError, match="missing.yaml"):
            remotemedia.validate(source)


def test_other_types_are_refused():
    with pytest.raises(TypeError, match="manifest must be a path"):
        remotemedia.validate(42)
    with pytest.raises(TypeError, match=r"manifest\['nodes'\]\[0\]: a set is not JSON"):
        remotemedia.validate({"version": "v1", "nodes": [{"a"}]})


def test_list_nodes_describes_types_and_params():
    nodes = {n.name: n for n in remotemedia.list_nodes()}
    assert {"PassThrough", "AudioLevelNode", "FastResampleNode", "CalculatorNode"} <= set(nodes)
    resample = nodes["FastResampleNode"]
    assert resample.accepts == ["audio"] and resample.produces == ["audio"]
    params = {p.name: p for p in resample.params}
    assert "target_rate" in params and params["target_rate"].required
    assert resample.params_schema["type"] == "object"
    assert nodes["PassThrough"].description
