"""Bad exports and bad arguments fail with a message that names the file and says how to re-export."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

import litetext
from litetext.cli import main
from litetext.onnx import InvalidExportError, quantize_export, read_manifest


def _edit_manifest(directory, **changes) -> None:
    path = directory / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def _overwrite_in_place(path, data: bytes) -> None:
    """Write `data` over the file itself (same inode, same size): what a stray write or a bad sync leaves."""
    size = path.stat().st_size
    assert len(data) == size
    with open(path, "r+b") as handle:
        handle.write(data)
    assert path.stat().st_size == size


def _flip_one_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    _overwrite_in_place(path, bytes(data))


def _reexport_command(directory) -> str:
    model = json.loads((directory / "manifest.json").read_text())["model"]
    return f"litetext export {model} --format onnx --out {directory}"


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
    with pytest.raises(InvalidExportError, match=r"text_encoder\.onnx does not match its sha256.*re-export"):
        litetext.load(str(export_copy))


@pytest.mark.parametrize("name", ["vision_encoder.onnx.data", "text_encoder.onnx.data", "decoder.onnx.data",
                                  "decoder_with_boxes.onnx.data"])
@pytest.mark.parametrize("content", ["zeros", "random bytes"])
def test_weights_overwritten_in_place_at_the_same_size_are_refused_at_load_naming_the_file(export_copy, name,
                                                                                            content):
    weights = export_copy / name
    size = weights.stat().st_size
    _overwrite_in_place(weights, bytes(size) if content == "zeros" else os.urandom(size))
    with pytest.raises(InvalidExportError) as caught:
        litetext.load(str(export_copy))
    assert f"{weights} does not match its sha256 in {export_copy / 'manifest.json'}" in str(caught.value)
    assert _reexport_command(export_copy) in str(caught.value)


@pytest.mark.parametrize("name", ["vision_encoder.onnx", "decoder.onnx", "decoder_with_boxes.onnx", "config.json",
                                  "processor_config.json", "tokenizer.json"])
def test_a_graph_or_processor_file_changed_by_one_byte_is_refused(export_copy, name):
    _flip_one_byte(export_copy / name)
    with pytest.raises(InvalidExportError, match=f"{name} does not match its sha256") as caught:
        litetext.load(str(export_copy))
    assert _reexport_command(export_copy) in str(caught.value)


def test_trusting_exports_skips_the_content_check(export_copy, monkeypatch, photos):
    monkeypatch.setenv("LITETEXT_TRUST_EXPORTS", "1")
    engine = litetext.load(str(export_copy))  # untouched: loads as without the variable
    assert engine.segment(photos[0], "cat").prompts == ["cat"]
    weights = export_copy / "decoder.onnx.data"
    _overwrite_in_place(weights, bytes(weights.stat().st_size))
    read_manifest(export_copy)  # contents are not read: the damage goes unnoticed, as documented
    monkeypatch.delenv("LITETEXT_TRUST_EXPORTS")
    with pytest.raises(InvalidExportError, match=r"decoder\.onnx\.data does not match its sha256"):
        read_manifest(export_copy)


@pytest.mark.parametrize("value", ["0", "true", ""])
def test_only_trust_exports_1_skips_the_content_check(export_copy, monkeypatch, value):
    monkeypatch.setenv("LITETEXT_TRUST_EXPORTS", value)
    _flip_one_byte(export_copy / "vision_encoder.onnx.data")
    with pytest.raises(InvalidExportError, match=r"vision_encoder\.onnx\.data does not match its sha256"):
        read_manifest(export_copy)


def test_a_trusted_corrupt_graph_still_fails_at_session_load_naming_it(export_copy, monkeypatch):
    monkeypatch.setenv("LITETEXT_TRUST_EXPORTS", "1")
    graph = export_copy / "text_encoder.onnx"
    graph.write_bytes(b"\0" * graph.stat().st_size)
    with pytest.raises(litetext.ModelError, match=r"ONNX Runtime cannot load .*text_encoder\.onnx.*re-export"):
        litetext.load(str(export_copy))


def test_an_export_of_format_1_without_hashes_is_refused_unless_trusted(export_copy, monkeypatch, photos):
    manifest = json.loads((export_copy / "manifest.json").read_text())
    del manifest["digests"]
    (export_copy / "manifest.json").write_text(json.dumps({**manifest, "format_version": 1}))
    with pytest.raises(InvalidExportError, match=r"export format 1, which records no file hashes") as caught:
        litetext.load(str(export_copy))
    assert _reexport_command(export_copy) in str(caught.value)
    assert "LITETEXT_TRUST_EXPORTS=1" in str(caught.value)
    monkeypatch.setenv("LITETEXT_TRUST_EXPORTS", "1")
    assert litetext.load(str(export_copy)).segment(photos[0], "cat").prompts == ["cat"]


def test_a_manifest_missing_a_graph_files_hash_is_refused(export_copy):
    digests = json.loads((export_copy / "manifest.json").read_text())["digests"]
    del digests["vision_encoder.onnx.data"]
    _edit_manifest(export_copy, digests=digests)
    with pytest.raises(InvalidExportError, match=r"records no hash of vision_encoder\.onnx\.data"):
        litetext.load(str(export_copy))


@pytest.mark.parametrize("manifest, reason", [
    (None, r"\(manifest\.json missing\)"),
    ('{"format": "onnx-community", "files": ["model.onnx"]}', r"\(its manifest\.json is not litetext's\)"),
    ("{not json", r"\(its manifest\.json is not litetext's\)"),
])
@pytest.mark.parametrize("backend", ["auto", "onnx"])
def test_graphs_without_a_litetext_manifest_are_not_a_litetext_export(export_copy, manifest, reason, backend):
    (export_copy / "manifest.json").unlink()
    if manifest is not None:
        (export_copy / "manifest.json").write_text(manifest)
    with pytest.raises(litetext.ModelError, match=reason) as caught:
        litetext.load(str(export_copy), backend=backend)
    assert f"{export_copy} is not a litetext export" in str(caught.value)
    assert f"litetext export MODEL --format onnx --out {export_copy}" in str(caught.value)


def test_an_export_loaded_as_a_pytorch_checkpoint_says_it_is_an_onnx_export(onnx_export):
    with pytest.raises(litetext.ModelError, match="is a litetext ONNX export, not a checkpoint"):
        litetext.load(str(onnx_export), backend="torch")


@pytest.mark.parametrize("fixture", ["onnx_export", "onnx_int8_export"])
def test_every_file_an_export_writes_is_recorded_with_its_sha256(request, fixture):
    directory = request.getfixturevalue(fixture)
    digests = json.loads((directory / "manifest.json").read_text())["digests"]
    files = sorted(p.name for p in directory.iterdir() if p.name != "manifest.json")
    assert sorted(digests) == files
    for name in files:
        assert digests[name] == "sha256:" + hashlib.sha256((directory / name).read_bytes()).hexdigest()
    assert read_manifest(directory).digests == digests  # and loading verifies them


def test_the_int8_copy_hashes_its_own_vision_encoder(onnx_export, onnx_int8_export):
    fp32 = read_manifest(onnx_export).digests
    int8 = read_manifest(onnx_int8_export).digests
    vision = set(read_manifest(onnx_int8_export).graphs["vision_encoder"].files)
    assert all(int8[name] != fp32.get(name) for name in vision)
    assert {n: d for n, d in int8.items() if n not in vision} == {n: d for n, d in fp32.items() if n not in vision}


def test_an_int8_export_changed_in_place_is_refused_with_the_quantize_flag(onnx_int8_export, tmp_path):
    import shutil

    copy = shutil.copytree(onnx_int8_export, tmp_path / "int8")
    _flip_one_byte(copy / "vision_encoder.onnx.data")
    with pytest.raises(InvalidExportError, match=r"vision_encoder\.onnx\.data does not match its sha256") as caught:
        litetext.load(str(copy))
    assert f"--format onnx --quantize int8 --out {copy}" in str(caught.value)


def test_quantizing_a_damaged_export_is_refused_before_writing(export_copy, tmp_path):
    _flip_one_byte(export_copy / "vision_encoder.onnx.data")
    with pytest.raises(InvalidExportError, match=r"vision_encoder\.onnx\.data does not match its sha256"):
        quantize_export(export_copy, tmp_path / "int8")
    assert not (tmp_path / "int8").exists()


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


def test_quantizing_a_read_only_export_leaves_it_as_it_was(export_copy, tmp_path):
    before = sorted(path.name for path in export_copy.iterdir())
    for path in [export_copy, *export_copy.iterdir()]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        quantize_export(export_copy, tmp_path / "int8")
    finally:
        for path in [export_copy, *export_copy.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert sorted(path.name for path in export_copy.iterdir()) == before
    assert not any(name.startswith(".") for name in (path.name for path in (tmp_path / "int8").iterdir()))
    assert read_manifest(tmp_path / "int8").precision == "int8-vision"
