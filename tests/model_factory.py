"""Tiny, deterministic ONNX models that fastembed 0.9.1 loads offline.

The tests must not download real models (there is no network in CI and the real ones weigh
hundreds of MB), yet they should exercise fastembed's real loading, tokenisation and
post-processing code. Each ``make_*`` function therefore writes a folder with the same file
layout as the Hugging Face repo fastembed expects, but with a few-hundred-token vocabulary and a
graph of a handful of ONNX ops whose weights come from a seeded numpy RNG. Load the folder with
``specific_model_path=str(dest)`` and ``local_files_only=True`` (or ``HF_HUB_OFFLINE=1``).

Which files fastembed reads (see ``fastembed/common/preprocessor_utils.py``):

* text models: ``tokenizer.json`` and ``tokenizer_config.json`` are required,
  ``special_tokens_map.json`` and ``config.json`` are optional, plus the ONNX file named by the
  model description (``model.onnx`` for every model used here).
* image models: ``preprocessor_config.json`` and ``model.onnx``.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

__all__ = [
    "COLBERT_MODEL_NAME",
    "COLBERT_QUERY_LENGTH",
    "IMAGE_MODEL_NAME",
    "SPLADE_MODEL_NAME",
    "TINY_TEXT_MODEL_NAME",
    "VOCAB",
    "make_colbert_model",
    "make_image_model",
    "make_splade_model",
    "make_text_model",
    "register_tiny_text_model",
]

TINY_TEXT_MODEL_NAME = "test/tiny-text"
# Built-in names: fastembed 0.9.1 only offers add_custom_model on TextEmbedding (and
# TextCrossEncoder), so the other kinds have to borrow the name of a model they imitate.
COLBERT_MODEL_NAME = "colbert-ir/colbertv2.0"
IMAGE_MODEL_NAME = "Qdrant/clip-ViT-B-32-vision"
SPLADE_MODEL_NAME = "prithivida/Splade_PP_en_v1"

# fastembed's Colbert pads every query to MIN_QUERY_LENGTH (31) tokens and then inserts a marker
# token, so a query always reaches the model with 32 tokens, whatever max_length says.
COLBERT_QUERY_LENGTH = 32

_OPSET = 17
# An old IR version keeps the files loadable by older onnxruntime releases as well.
_IR_VERSION = 8
_SEED = 20240611

# Ids 1 and 2 are hard-coded in fastembed's Colbert as the query and document markers, the real
# colbertv2.0 vocabulary has [unused0] and [unused1] there, so this one does too.
_SPECIAL_TOKENS = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_ADDED_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

_COMMON_WORDS = """
the of and to in a is that for it as was with be by on not he i this are or his from at which
but have an they you were her she there one all we their has been would will what if can when
so no said who more about up out them some could into than then other time only new these two
may first do any like my now over such our man me even most made after also did many before
must through back years where much your way well down should because each just those people
how too little state good very make world still own see men work long get here between both
life being under never day same another know while last might us great old year off come since
against go came right used take three states himself few house use during without again place
around however home small found mrs thought went say part once general high upon school every
don't does got united left number course war until always away something fact though water less
public put think almost hand enough far took head yet government system better set told nothing
night end why called didn't eyes find going look asked later knew point next program city
business give group toward young days let room president side social given present several order
national possible rather second face per among form important often things looked early white
case john become large big need four within felt along children saw best church ever least power
development light thing seemed family interest want members mind country area others although
turned done open god service certain kind problem began different door thus help sense means
whole matter perhaps itself york times law human line above name example action company hands
local show whether five history gave today either act feet across taken past quality cat dog
car red blue green black sun moon tree fish bird book music food coffee data search vector
model text image query document fast quick brown fox jumps lazy apple banana computer science
hello hi yes please thanks store record records database vectors embedding embeddings beam
pipeline batch qdrant point points payload index file files user users word words sentence
language english news price market money game team play player season movie film story love
friend mother father woman women child city town road street river sea mountain weather rain
snow winter summer spring red yellow orange purple phone email web page site online video photo
"""

_WORD_PIECES = """
##s ##es ##ed ##ing ##ly ##er ##est ##ion ##tion ##ment ##ness ##able ##al ##ic ##ive ##ous
##ful ##less ##ity ##ize ##ise ##en ##an ##on ##in ##ar ##or ##re ##le ##th ##st ##nd ##ch ##sh
"""


def _build_vocab() -> list[str]:
    """Special tokens, punctuation, digits, letters, common words and suffixes, each once."""
    letters = list(string.ascii_lowercase)
    digits = list(string.digits)
    pieces = (
        list(string.punctuation)
        + digits
        + letters
        + [f"##{ch}" for ch in digits + letters]
        + _WORD_PIECES.split()
        + _COMMON_WORDS.split()
    )
    # BertPreTokenizer splits "don't" into three tokens, so words with punctuation can never
    # match; keep only what WordPiece can actually produce.
    usable = (p for p in pieces if p.isalnum() or len(p) == 1 or p.startswith("##"))
    return list(dict.fromkeys([*_SPECIAL_TOKENS, *usable]))


VOCAB: list[str] = _build_vocab()


# ---------------------------------------------------------------------------------------------
# tokenizer files
# ---------------------------------------------------------------------------------------------


def _build_tokenizer(max_length: int) -> Tokenizer:
    """A BERT-uncased style WordPiece tokenizer over VOCAB, so any ASCII text tokenises."""
    vocab = {token: idx for idx, token in enumerate(VOCAB)}
    tokenizer = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    tokenizer.add_special_tokens(_ADDED_SPECIAL_TOKENS)
    # fastembed's load_tokenizer replaces both (truncation to tokenizer_config.json's limit,
    # padding to the longest in the batch); they are written because real exports carry them.
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.enable_padding(pad_id=vocab["[PAD]"], pad_token="[PAD]")
    return tokenizer


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _write_tokenizer_files(dest: Path, *, max_length: int, extra_config: dict[str, Any]) -> None:
    """Write tokenizer.json, tokenizer_config.json, special_tokens_map.json and config.json."""
    _build_tokenizer(max_length).save(str(dest / "tokenizer.json"))
    special_tokens_map = {
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
        "pad_token": "[PAD]",
        "sep_token": "[SEP]",
        "unk_token": "[UNK]",
    }
    _write_json(dest / "special_tokens_map.json", special_tokens_map)
    # fastembed truncates to min(model_max_length, max_length) of this file, not to the limit
    # stored in tokenizer.json.
    _write_json(
        dest / "tokenizer_config.json",
        {
            **special_tokens_map,
            "do_lower_case": True,
            "model_max_length": max_length,
            "padding_side": "right",
            "tokenizer_class": "BertTokenizer",
            "truncation_side": "right",
        },
    )
    _write_json(
        dest / "config.json",
        {
            "model_type": "bert",
            "vocab_size": len(VOCAB),
            "max_position_embeddings": max_length,
            "pad_token_id": 0,
            **extra_config,
        },
    )


# ---------------------------------------------------------------------------------------------
# ONNX graph pieces
# ---------------------------------------------------------------------------------------------


def _init(name: str, array: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(array, name=name)


def _text_inputs() -> list[onnx.ValueInfoProto]:
    return [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]),
    ]


def _position_nodes(
    n_positions: int, width: int, rng: np.random.Generator, scale: float
) -> tuple[list[onnx.NodeProto], list[TensorProto]]:
    """Look up a [sequence, width] position table, named ``position_embeds``.

    The table has exactly ``n_positions`` rows, like BERT's, so a sequence the tokenizer failed
    to truncate makes onnxruntime fail (a broadcast error in the Add) instead of passing.
    """
    nodes = [
        helper.make_node("Shape", ["input_ids"], ["ids_shape"]),
        helper.make_node("Gather", ["ids_shape", "one"], ["seq_len"], axis=0),
        helper.make_node("Range", ["zero", "seq_len", "one"], ["position_ids"]),
        helper.make_node("Gather", ["position_table", "position_ids"], ["position_embeds"]),
    ]
    inits = [
        _init("zero", np.array(0, dtype=np.int64)),
        _init("one", np.array(1, dtype=np.int64)),
        _init(
            "position_table",
            (rng.standard_normal((n_positions, width)) * scale).astype(np.float32),
        ),
    ]
    return nodes, inits


def _mask_nodes() -> tuple[list[onnx.NodeProto], list[TensorProto]]:
    """attention_mask [batch, seq] -> float ``mask3`` [batch, seq, 1] to zero padded positions."""
    nodes = [
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_f", "last_axis"], ["mask3"]),
    ]
    return nodes, [_init("last_axis", np.array([-1], dtype=np.int64))]


def _save_model(
    dest: Path,
    name: str,
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    inits: list[TensorProto],
) -> None:
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", _OPSET)],
        ir_version=_IR_VERSION,
        producer_name="qdrant-beam-tests",
    )
    onnx.checker.check_model(model)
    onnx.save_model(model, str(dest / "model.onnx"))


def _token_encoder(dest: Path, *, dim: int, n_positions: int, seed: int, graph_name: str) -> None:
    """BERT-shaped encoder: token + position embeddings -> tanh(x @ W) -> zero the padding.

    Output ``last_hidden_state`` [batch, sequence, dim]. Random N(0, 1) token rows make texts
    with different tokens land far apart after pooling.
    """
    rng = np.random.default_rng(seed)
    pos_nodes, pos_inits = _position_nodes(n_positions, dim, rng, scale=0.1)
    mask_nodes, mask_inits = _mask_nodes()
    nodes = [
        helper.make_node("Gather", ["token_table", "input_ids"], ["token_embeds"]),
        *pos_nodes,
        helper.make_node("Add", ["token_embeds", "position_embeds"], ["embeds"]),
        helper.make_node("MatMul", ["embeds", "projection"], ["projected"]),
        helper.make_node("Tanh", ["projected"], ["hidden"]),
        *mask_nodes,
        helper.make_node("Mul", ["hidden", "mask3"], ["last_hidden_state"]),
    ]
    inits = [
        _init("token_table", rng.standard_normal((len(VOCAB), dim)).astype(np.float32)),
        _init("projection", (rng.standard_normal((dim, dim)) / np.sqrt(dim)).astype(np.float32)),
        *pos_inits,
        *mask_inits,
    ]
    output = helper.make_tensor_value_info(
        "last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", dim]
    )
    _save_model(dest, graph_name, nodes, _text_inputs(), [output], inits)


# ---------------------------------------------------------------------------------------------
# public factories
# ---------------------------------------------------------------------------------------------


def make_text_model(dest: Path, *, dim: int = 16, max_length: int = 32, seed: int = _SEED) -> Path:
    """Write a tiny dense BERT-like model for ``TextEmbedding`` with a custom name.

    Register it first with :func:`register_tiny_text_model` (MEAN pooling, normalised), then
    ``TextEmbedding(name, specific_model_path=str(dest), local_files_only=True)``.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    _write_tokenizer_files(
        dest,
        max_length=max_length,
        extra_config={"architectures": ["BertModel"], "hidden_size": dim},
    )
    _token_encoder(dest, dim=dim, n_positions=max_length, seed=seed, graph_name="tiny_text")
    return dest


def register_tiny_text_model(name: str = TINY_TEXT_MODEL_NAME, dim: int = 16) -> str:
    """Register ``name`` as a MEAN-pooled, normalised custom model, once per process.

    ``TextEmbedding.add_custom_model`` raises ``ValueError`` for a name that is already known,
    and its registry is class-level, so every test calling it directly would break the next one.
    A second call with the same settings is a no-op; a conflicting one is an error.
    """
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType
    from fastembed.text.custom_text_embedding import CustomTextEmbedding

    for description in TextEmbedding._list_supported_models():
        if description.model.lower() != name.lower():
            continue
        config = CustomTextEmbedding.POSTPROCESSING_MAPPING.get(description.model)
        if config is None:
            raise ValueError(f"{name!r} is a built-in fastembed model, pick another test name")
        if (
            description.dim != dim
            or description.model_file != "model.onnx"
            or config.pooling != PoolingType.MEAN
            or not config.normalization
        ):
            raise ValueError(
                f"{name!r} is already registered with dim={description.dim}, "
                f"pooling={config.pooling}, normalization={config.normalization}; "
                f"use another name for dim={dim}"
            )
        return description.model

    TextEmbedding.add_custom_model(
        model=name,
        pooling=PoolingType.MEAN,
        normalization=True,
        sources=ModelSource(hf=name),
        dim=dim,
        model_file="model.onnx",
    )
    return name


def make_colbert_model(
    dest: Path, *, dim: int = 128, max_length: int = 32, seed: int = _SEED + 1
) -> Path:
    """Write a tiny late-interaction model that loads as ``colbert-ir/colbertv2.0``.

    fastembed's Colbert needs ``[MASK]`` as a special token (queries are padded with it), every
    ``string.punctuation`` character to encode to a token (they form its skip list), and ids 1
    and 2 free for the query/document markers it inserts after ``[CLS]``. The position table
    covers both ``max_length`` and the fixed 32-token query.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    _write_tokenizer_files(
        dest,
        max_length=max_length,
        extra_config={"architectures": ["HF_ColBERT"], "hidden_size": dim, "dim": dim},
    )
    _token_encoder(
        dest,
        dim=dim,
        n_positions=max(max_length, COLBERT_QUERY_LENGTH),
        seed=seed,
        graph_name="tiny_colbert",
    )
    return dest


def make_splade_model(dest: Path, *, max_length: int = 32, seed: int = _SEED + 2) -> Path:
    """Write a tiny SPLADE model that loads as ``prithivida/Splade_PP_en_v1``.

    Output ``logits`` [batch, sequence, vocab]. fastembed keeps ``max over tokens of
    log1p(relu(logits)) * mask``, so each word's row is negative except for the word itself
    and two "expansion" terms, and special tokens' rows are all negative: a text gets about
    three non-zero weights per distinct word and none from [CLS]/[SEP].
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    _write_tokenizer_files(
        dest, max_length=max_length, extra_config={"architectures": ["BertForMaskedLM"]}
    )

    rng = np.random.default_rng(seed)
    vocab_size = len(VOCAB)
    lexicon = np.full((vocab_size, vocab_size), -1.0, dtype=np.float32)
    for token_id in range(len(_SPECIAL_TOKENS), vocab_size):
        lexicon[token_id, token_id] = 1.0 + rng.random()
        expansions = rng.choice(vocab_size - len(_SPECIAL_TOKENS), size=2, replace=False)
        lexicon[token_id, expansions + len(_SPECIAL_TOKENS)] = np.maximum(
            lexicon[token_id, expansions + len(_SPECIAL_TOKENS)], 0.2 + 0.5 * rng.random(2)
        )

    # A small per-position bias, which keeps the sign pattern but still makes an untruncated
    # sequence fail on the position lookup.
    pos_nodes, pos_inits = _position_nodes(max_length, 1, rng, scale=0.01)
    mask_nodes, mask_inits = _mask_nodes()
    nodes = [
        helper.make_node("Gather", ["lexicon", "input_ids"], ["token_logits"]),
        *pos_nodes,
        helper.make_node("Add", ["token_logits", "position_embeds"], ["biased"]),
        *mask_nodes,
        helper.make_node("Mul", ["biased", "mask3"], ["logits"]),
    ]
    inits = [_init("lexicon", lexicon), *pos_inits, *mask_inits]
    output = helper.make_tensor_value_info(
        "logits", TensorProto.FLOAT, ["batch", "sequence", vocab_size]
    )
    _save_model(dest, "tiny_splade", nodes, _text_inputs(), [output], inits)
    return dest


# CLIP's normalisation constants, as in openai/clip-vit-base-patch32's preprocessor_config.json.
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
_IMAGE_SIZE = 224
_POOL = 32  # 224 / 32 = a 7x7 grid per channel


def make_image_model(dest: Path, *, dim: int = 512, seed: int = _SEED + 3) -> Path:
    """Write a tiny CLIP-style vision model that loads as ``Qdrant/clip-ViT-B-32-vision``.

    ``pixel_values`` [batch, 3, 224, 224] -> 32x32 average pool (a 7x7 colour grid, so layout
    and colour both matter) -> flatten -> matmul -> ``image_embeds`` [batch, dim]. fastembed
    feeds its first input, reads its first output and L2-normalises it.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    # Sizes are dicts: fastembed 0.9.1 crashes on the legacy integer form ("size": 224).
    _write_json(
        dest / "preprocessor_config.json",
        {
            "crop_size": {"height": _IMAGE_SIZE, "width": _IMAGE_SIZE},
            "do_center_crop": True,
            "do_convert_rgb": True,
            "do_normalize": True,
            "do_rescale": True,
            "do_resize": True,
            "image_mean": CLIP_MEAN,
            "image_processor_type": "CLIPImageProcessor",
            "image_std": CLIP_STD,
            "resample": 3,
            "rescale_factor": 1 / 255,
            "size": {"shortest_edge": _IMAGE_SIZE},
        },
    )

    rng = np.random.default_rng(seed)
    grid = _IMAGE_SIZE // _POOL
    features = 3 * grid * grid
    nodes = [
        helper.make_node(
            "AveragePool",
            ["pixel_values"],
            ["pooled"],
            kernel_shape=[_POOL, _POOL],
            strides=[_POOL, _POOL],
        ),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "projection"], ["image_embeds"]),
    ]
    inits = [
        _init(
            "projection",
            (rng.standard_normal((features, dim)) / np.sqrt(features)).astype(np.float32),
        )
    ]
    inputs = [
        helper.make_tensor_value_info(
            "pixel_values", TensorProto.FLOAT, ["batch", 3, _IMAGE_SIZE, _IMAGE_SIZE]
        )
    ]
    outputs = [helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, ["batch", dim])]
    _save_model(dest, "tiny_clip_vision", nodes, inputs, outputs, inits)
    return dest
