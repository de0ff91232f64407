"""CoreML export of the text encoder: it converts here, its interface is what an app needs; it runs on Apple only."""

from __future__ import annotations

import json

import pytest

import litetext
from litetext.cli import main

ct = pytest.importorskip("coremltools", reason='CoreML export needs pip install "litetext[coreml]"')


@pytest.fixture(scope="module")
def coreml_export(checkpoints, tmp_path_factory):
    out = tmp_path_factory.mktemp("coreml") / "tiny-litetext-coreml"
    assert main(["export", str(checkpoints["litetext"]), "--format", "coreml", "--out", str(out)]) == 0
    return out


def _spec(directory):
    return ct.utils.load_spec(str(directory / "text_encoder.mlpackage"))


def test_export_writes_an_ml_program_taking_token_ids_for_1_to_64_prompts(coreml_export):
    spec = _spec(coreml_export)
    assert spec.WhichOneof("Type") == "mlProgram"
    inputs = {i.name: i.type.multiArrayType for i in spec.description.input}
    assert set(inputs) == {"input_ids", "attention_mask"}
    for array in inputs.values():
        assert array.dataType == ct.proto.FeatureTypes_pb2.ArrayFeatureType.INT32
        prompts, tokens = array.shapeRange.sizeRanges
        assert (prompts.lowerBound, prompts.upperBound) == (1, 64)
        assert (tokens.lowerBound, tokens.upperBound) == (32, 32)
    assert [o.name for o in spec.description.output] == ["text_features"]
    assert spec.description.metadata.userDefined["litetext.version"] == litetext.__version__


def test_manifest_records_versions_precision_and_that_the_converted_program_matched(coreml_export):
    manifest = json.loads((coreml_export / "manifest.json").read_text())
    assert manifest["format"] == "litetext-coreml"
    assert manifest["precision"] == "fp32"
    assert manifest["litetext_version"] == litetext.__version__
    assert manifest["coremltools_version"] == ct.__version__
    assert manifest["model_type"] == "sam3_lite_text"
    assert manifest["exported_program_max_difference"] <= 1e-4
    assert manifest["inputs"]["input_ids"] == [["prompts (1..64)", 32], "int32"]


def test_export_carries_the_tokenizer_that_makes_its_token_ids(coreml_export, checkpoints):
    from transformers import Sam3Processor

    ours = Sam3Processor.from_pretrained(coreml_export)
    original = Sam3Processor.from_pretrained(checkpoints["litetext"])
    ids = ours.tokenizer(["a cat", "red bus"], padding="max_length", max_length=32)["input_ids"]
    assert ids == original.tokenizer(["a cat", "red bus"], padding="max_length", max_length=32)["input_ids"]


def test_fp16_export_halves_the_weights(coreml_export, checkpoints, tmp_path):
    from litetext.coreml import export_coreml

    manifest = export_coreml(checkpoints["litetext"], tmp_path / "fp16", precision="fp16")
    assert manifest.precision == "fp16"

    def weights(directory):
        return sum(f.stat().st_size for f in (directory / "text_encoder.mlpackage").rglob("weight.bin"))

    assert weights(tmp_path / "fp16") < 0.6 * weights(coreml_export)


def test_re_export_replaces_an_earlier_export_but_not_other_files(checkpoints, coreml_export, tmp_path):
    from litetext.coreml import export_coreml

    again = tmp_path / "again"
    export_coreml(checkpoints["litetext"], again)
    export_coreml(checkpoints["litetext"], again)  # over its own earlier export: allowed
    assert (again / "text_encoder.mlpackage").is_dir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(litetext.ModelError, match="exists and is not a litetext CoreML export"):
        export_coreml(checkpoints["litetext"], tmp_path / "other")
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_wrong_options_are_refused_with_the_right_flag_named(checkpoints, tmp_path, capsys):
    assert main(["export", str(checkpoints["litetext"]), "--format", "coreml", "--quantize", "int8",
                 "--out", str(tmp_path / "a")]) != 0
    assert "--quantize int8 is for --format onnx" in capsys.readouterr().err
    assert main(["export", str(checkpoints["litetext"]), "--format", "onnx", "--precision", "fp16",
                 "--out", str(tmp_path / "b")]) != 0
    assert "--precision is for --format coreml" in capsys.readouterr().err
    from litetext.coreml import export_coreml

    with pytest.raises(litetext.ModelError, match="unknown CoreML precision 'int4'"):
        export_coreml(checkpoints["litetext"], tmp_path / "c", precision="int4")
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


def test_loading_a_coreml_export_as_a_model_says_what_it_is(coreml_export):
    with pytest.raises(litetext.ModelError, match="is a CoreML export of the text encoder alone"):
        litetext.load(str(coreml_export))


def test_manifest_hashes_every_file_and_the_check_detects_a_change(coreml_export, tmp_path):
    import hashlib
    import shutil

    from litetext.coreml import check_coreml_export
    from litetext.onnx import InvalidExportError

    manifest = check_coreml_export(coreml_export)
    files = sorted(p.relative_to(coreml_export).as_posix() for p in coreml_export.rglob("*")
                   if p.is_file() and p.relative_to(coreml_export).as_posix() != "manifest.json")
    assert sorted(manifest.digests) == files
    assert any(name.startswith("text_encoder.mlpackage/") and name.endswith("weight.bin") for name in files)
    for name in files:
        assert manifest.digests[name] == "sha256:" + hashlib.sha256((coreml_export / name).read_bytes()).hexdigest()

    copy = shutil.copytree(coreml_export, tmp_path / "copy")
    weights = next(copy.rglob("weight.bin"))
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    with open(weights, "r+b") as handle:  # in place, same size
        handle.write(bytes(data))
    with pytest.raises(InvalidExportError, match="weight.bin does not match its sha256") as caught:
        check_coreml_export(copy)
    assert f"litetext export {manifest.model} --format coreml --out {copy}" in str(caught.value)
    weights.unlink()
    with pytest.raises(InvalidExportError, match="weight.bin is missing"):
        check_coreml_export(copy)
    with pytest.raises(InvalidExportError, match="is not a litetext CoreML export"):
        check_coreml_export(tmp_path)
