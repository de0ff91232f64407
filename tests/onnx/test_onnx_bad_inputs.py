"""Bad exports and bad arguments fail with a message that names the file and says how to re-export."""

from __future__ import annotations

import json

import pytest

import litetext
from litetext.cli import main
from litetext.onnx import InvalidExportError, read_manifest


def _edit_manifest(directory, **changes) -> None:
    path = directory / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_a_directory_that_is_not_an_export_is_refused(tmp_path, checkpoints):
    with pytest.raises(InvalidExportError, match=r"no manifest\.json.*litetext export MODEL --format onnx"):
        read_manifest(tmp_path)
    with pytest.raises(InvalidExportError, match="not a directory"):
        read_manifest(tmp_path / "missing")
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(InvalidExportError, match=r"manifest\.json is not a litetext ONNX manifest"):
        read_manifest(tmp_path)


@pytest.mark.parametrize("field, value, message", [
    ("litetext_version", "0.0.1", r"written by litetext 0\.0\.1, this is litetext"),
    ("transformers_version", "4.0.0", r"written with transformers 4\.0\.0, this is transformers"),
    ("format_version", 99, "export format 99"),
])
def test_a_manifest_from_another_version_says_how_to_re_export(export_copy, field, value, message):
    _edit_manifest(export_copy, **{field: value})
    with pytest.raises(InvalidExportError, match=message) as caught:
        litetext.load(str(export_copy))
    assert str(export_copy / "manifest.json") in str(caught.value)
    model = json.loads((export_copy / "manifest.json").read_text())["model"]
    assert f"litetext export {model} --format onnx --out {export_copy}" in str(caught.value)


def test_a_missing_external_data_file_is_named(export_copy):
    (export_copy / "vision_encoder.onnx.data").unlink()
    with pytest.raises(InvalidExportError, match=r"vision_encoder\.onnx\.data is missing \(the external-data file"):
        litetext.load(str(export_copy), backend="onnx")


def test_a_truncated_graph_file_is_named(export_copy):
    data = export_copy / "decoder.onnx.data"
    data.write_bytes(data.read_bytes()[:100])
    with pytest.raises(InvalidExportError, match=r"decoder\.onnx\.data is 100 bytes, the manifest says"):
        read_manifest(export_copy)


def test_a_corrupt_graph_of_the_right_size_fails_at_load_naming_it(export_copy):
    graph = export_copy / "text_encoder.onnx"
    graph.write_bytes(b"\0" * graph.stat().st_size)
    with pytest.raises(litetext.ModelError, match=r"ONNX Runtime cannot load .*text_encoder\.onnx.*re-export"):
        litetext.load(str(export_copy))


@pytest.mark.parametrize("kwargs, message", [
    ({"device": "cuda"}, "runs on the CPU"),
    ({"dtype": "bf16"}, "not dtype 'bf16'"),
    ({"dtype": "int8-vision"}, "holds a float32 export, not int8-vision"),
    ({"tracker": True}, "no tracker"),
])
def test_unsupported_onnx_options_are_refused(onnx_export, kwargs, message):
    with pytest.raises(litetext.ModelError, match=message):
        litetext.load(str(onnx_export), backend="onnx", **kwargs)


def test_compile_on_an_onnx_engine_says_it_is_for_pytorch(onnx_engine):
    with pytest.raises(litetext.ModelError, match="compile\\(\\) is for the PyTorch backend"):
        onnx_engine.compile()


def test_an_unknown_backend_is_refused(checkpoints):
    with pytest.raises(litetext.ModelError, match="unknown backend 'tensorrt'"):
        litetext.load(str(checkpoints["litetext"]), backend="tensorrt")


def test_export_refuses_to_overwrite_a_directory_that_is_not_an_export(checkpoints, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    code = main(["export", str(checkpoints["litetext"]), "--format", "onnx", "--out", str(tmp_path)])
    assert code == 2
    assert "is not a litetext ONNX export; choose an empty or new directory" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_an_onnx_engine_keeps_serving_after_bad_input(onnx_engine, photos):
    with pytest.raises(litetext.InvalidImageError):
        onnx_engine.segment(b"garbage", "cat")
    with pytest.raises(litetext.BoxError):
        onnx_engine.segment(photos[0], "cat", boxes=[[10, 10, 5, 5]])
    assert onnx_engine.segment(photos[0], "cat").prompts == ["cat"]
