#!/usr/bin/env python3
"""Convert a CTranslate2 Whisper model (faster-whisper's model.bin) to whisper.cpp's ggml file.

Usage:
    ct2_to_ggml.py --model model.bin --tokenizer tokenizer.json --out ggml-base.bin
    ct2_to_ggml.py --verify ggml-base.bin [--model model.bin]

Standard library only (no numpy, no torch), deterministic output: the same inputs give the
same bytes. The big weight matrices are copied byte for byte (streamed, never held in memory);
only the small tensors whisper.cpp wants in float32 are widened from float16, which is exact.

Input: CTranslate2 model.bin (binary version 4-6, spec "WhisperSpec")
-------------------------------------------------------------------------
    u32 binary_version, str spec_name, u32 spec_revision, u32 n_variables,
    n_variables x { str name, u8 rank, u32 dims[rank], u8 dtype, u32 n_bytes, data },
    u32 n_aliases, n_aliases x { str alias, str target }
where str = u16 length (including a trailing NUL) + UTF-8 bytes + NUL, all little-endian,
dtype 0 = float32, 1 = int8, 2 = int16, 3 = int32, 4 = float16, 5 = bfloat16. Variables are
sorted by name; a duplicate tensor is stored once and aliased (Whisper's output projection,
decoder/projection/weight, is an alias of decoder/embeddings/weight). Matrices are row-major
[out_features, in_features], as in PyTorch.

Output: whisper.cpp ggml (what models/convert-pt-to-ggml.py writes, read by whisper_model_load)
-------------------------------------------------------------------------------------------
    i32 magic 0x67676d6c ("ggml")
    i32 n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer,
        n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype (1 = f16, 0 = f32)
    i32 n_mel, i32 n_fft (= 201), f32 filters[n_mel][n_fft]
    i32 n_tokens, n_tokens x { i32 length, raw token bytes }
    tensors until EOF: i32 n_dims, i32 name_length, i32 type (0 = f32, 1 = f16),
        i32 ne[n_dims] (PyTorch shape reversed: ggml's ne[0] is the fastest-varying axis),
        name bytes, data.

Hyper-parameters come from the tensor shapes: n_vocab and n_text_state from the token
embedding, n_audio_ctx/n_text_ctx from the position encodings, n_mels from conv1's input
channels, layer counts from the layer_N scopes, head counts from the num_heads scalars.

Tensor mapping (i = layer index; "->" = copied byte for byte unless marked f32)
    encoder/conv{1,2}/weight [out,in,3]            -> encoder.conv{1,2}.weight (f16)
    encoder/conv{1,2}/bias [n]                     -> encoder.conv{1,2}.bias, reshaped [n,1], f32
    encoder/position_encodings/encodings [1500,n]  -> encoder.positional_embedding, f32
    encoder/layer_norm/{gamma,beta}                -> encoder.ln_post.{weight,bias}, f32
    encoder/layer_i/self_attention/layer_norm      -> encoder.blocks.i.attn_ln, f32
    encoder/layer_i/self_attention/linear_0 [3n,n] -> rows [0,n) attn.query, [n,2n) attn.key,
                                                      [2n,3n) attn.value (the fused QKV; the key
                                                      bias slice is zero and dropped: Whisper's
                                                      key projection has no bias)
    encoder/layer_i/self_attention/linear_1        -> encoder.blocks.i.attn.out
    encoder/layer_i/ffn/layer_norm                 -> encoder.blocks.i.mlp_ln, f32
    encoder/layer_i/ffn/linear_0, linear_1         -> encoder.blocks.i.mlp.0, mlp.2
    decoder/embeddings/weight [n_vocab,n]          -> decoder.token_embedding.weight (f16; also
                                                      the output projection in both formats)
    decoder/position_encodings/encodings [448,n]   -> decoder.positional_embedding, f32
    decoder/layer_norm                             -> decoder.ln, f32
    decoder/layer_i/self_attention/...             -> decoder.blocks.i.attn / attn_ln (as above)
    decoder/layer_i/attention/layer_norm           -> decoder.blocks.i.cross_attn_ln, f32
    decoder/layer_i/attention/linear_0 [n,n]       -> decoder.blocks.i.cross_attn.query
    decoder/layer_i/attention/linear_1 [2n,n]      -> rows [0,n) cross_attn.key (bias dropped,
                                                      zero), [n,2n) cross_attn.value (fused KV)
    decoder/layer_i/attention/linear_2             -> decoder.blocks.i.cross_attn.out
    decoder/layer_i/ffn/...                        -> decoder.blocks.i.mlp_ln, mlp.0, mlp.2
Every bias and layer-norm vector is written as f32 (whisper.cpp's loader allocates them as
GGML_TYPE_F32 and checks the byte size), as are the conv biases and positional embeddings;
weight matrices, conv kernels and the token embedding keep the model's type (f16 -> ftype 1).

Mel filters: Whisper's mel_filters (librosa.filters.mel(sr=16000, n_fft=400, n_mels=80 or 128),
Slaney mel scale, Slaney area normalisation), recomputed here with librosa's float32 roundings;
the result is bit-identical to openai/whisper's assets/mel_filters.npz.

Vocabulary: the byte-level BPE vocabulary of tokenizer.json ("model"."vocab") without its special
tokens, in id order (ids 0..50255 for English-only models, 0..50256 for multilingual ones, where
50256 is the empty token), each token mapped back from GPT-2's bytes_to_unicode alphabet to raw
bytes: the same list convert-pt-to-ggml.py writes from Whisper's tiktoken file. whisper.cpp
derives the special and timestamp tokens from n_vocab; their ids are cross-checked against the
tokenizer's added tokens.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import struct
import sys
import time

GGML_MAGIC = 0x67676D6C
GGML_F32 = 0
GGML_F16 = 1

CT2_DTYPES = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16", 5: "bfloat16"}
CT2_F32 = 0
CT2_F16 = 4
CT2_SIZES = {0: 4, 1: 1, 2: 2, 3: 4, 4: 2, 5: 2}

# Scalars of the CTranslate2 spec that describe the architecture; checked, not converted.
# name -> allowed values (None: any value).
CT2_SCALARS = {
    "decoder/activation": {3},  # common_spec.Activation.GELU
    "decoder/alibi": {0},
    "decoder/alignment_heads": None,
    "decoder/alignment_layer": None,
    "decoder/num_heads": None,
    "decoder/pre_norm": {1},
    "decoder/scale_embeddings": {0, 1.0},  # False, or a multiplier of 1
    "decoder/start_from_zero_embedding": {0},
    "encoder/num_heads": None,
}

N_FFT = 400
SAMPLE_RATE = 16000
COPY_CHUNK = 1 << 20


class ConversionError(Exception):
    pass


def log(msg: str) -> None:
    print(f"[ct2_to_ggml] {msg}", file=sys.stderr)


# ------------------------------------------------------------------------------------------
# CTranslate2 model.bin
# ------------------------------------------------------------------------------------------


class Ct2Var:
    __slots__ = ("name", "shape", "dtype", "offset", "nbytes", "value")

    def __init__(self, name, shape, dtype, offset, nbytes, value):
        self.name = name
        self.shape = shape
        self.dtype = dtype
        self.offset = offset
        self.nbytes = nbytes
        self.value = value  # decoded scalar, for rank-0 variables

    @property
    def row_bytes(self) -> int:
        n = 1
        for d in self.shape[1:]:
            n *= d
        return n * CT2_SIZES[self.dtype]


class Ct2Model:
    def __init__(self, path: str):
        self.path = path
        self.vars: dict[str, Ct2Var] = {}
        self.aliases: dict[str, str] = {}
        self._parse()

    def _parse(self) -> None:
        size = os.path.getsize(self.path)
        with open(self.path, "rb") as f:

            def take(n: int) -> bytes:
                b = f.read(n)
                if len(b) != n:
                    raise ConversionError(f"{self.path}: truncated CTranslate2 model (at byte {f.tell()})")
                return b

            def u(fmt: str):
                return struct.unpack("<" + fmt, take(struct.calcsize("<" + fmt)))

            def string() -> str:
                (n,) = u("H")
                b = take(n)
                if n == 0 or b[-1] != 0:
                    raise ConversionError(f"{self.path}: malformed string in the CTranslate2 header")
                return b[:-1].decode("utf-8")

            (version,) = u("I")
            if not 4 <= version <= 6:
                raise ConversionError(
                    f"{self.path}: not a CTranslate2 model.bin of binary version 4-6 "
                    f"(first word is {version}; byte-swapped or another format?)"
                )
            self.binary_version = version
            self.spec = string()
            (self.revision,) = u("I")
            if self.spec != "WhisperSpec":
                raise ConversionError(f"{self.path}: CTranslate2 spec is '{self.spec}', expected 'WhisperSpec'")
            if self.revision > 3:
                raise ConversionError(f"{self.path}: WhisperSpec revision {self.revision} is newer than the 3 this converter knows")
            (n_vars,) = u("I")
            for _ in range(n_vars):
                name = string()
                (rank,) = u("B")
                shape = u("I" * rank) if rank else ()
                dtype, nbytes = u("BI")
                if dtype not in CT2_SIZES:
                    raise ConversionError(f"{self.path}: variable {name} has unknown dtype id {dtype}")
                count = 1
                for d in shape:
                    count *= d
                if count * CT2_SIZES[dtype] != nbytes:
                    raise ConversionError(f"{self.path}: variable {name} {shape} has {nbytes} bytes, expected {count * CT2_SIZES[dtype]}")
                offset = f.tell()
                value = None
                if rank == 0:
                    raw = take(nbytes)
                    fmt = {0: "f", 1: "b", 2: "h", 3: "i"}.get(dtype)
                    if fmt is None:
                        raise ConversionError(f"{self.path}: scalar {name} has dtype {CT2_DTYPES[dtype]}")
                    (value,) = struct.unpack("<" + fmt, raw)
                else:
                    f.seek(nbytes, os.SEEK_CUR)
                    if f.tell() > size:
                        raise ConversionError(f"{self.path}: truncated CTranslate2 model (variable {name})")
                if name in self.vars:
                    raise ConversionError(f"{self.path}: duplicate variable {name}")
                self.vars[name] = Ct2Var(name, tuple(shape), dtype, offset, nbytes, value)
            (n_alias,) = u("I")
            for _ in range(n_alias):
                alias = string()
                self.aliases[alias] = string()
            if f.tell() != size:
                raise ConversionError(f"{self.path}: {size - f.tell()} unexpected trailing bytes")

    def var(self, name: str) -> Ct2Var:
        v = self.vars.get(name)
        if v is None:
            raise ConversionError(f"{self.path}: variable {name} is missing (not a Whisper model of the expected layout?)")
        return v

    def read(self, v: Ct2Var, start: int = 0, length: int | None = None) -> bytes:
        if length is None:
            length = v.nbytes - start
        with open(self.path, "rb") as f:
            f.seek(v.offset + start)
            return f.read(length)


def count_layers(names, prefix: str) -> int:
    pat = re.compile(re.escape(prefix) + r"layer_(\d+)/")
    idx = {int(m.group(1)) for n in names for m in [pat.match(n)] if m}
    if not idx:
        return 0
    if idx != set(range(len(idx))):
        raise ConversionError(f"layer indices under {prefix} are not contiguous: {sorted(idx)}")
    return len(idx)


# ------------------------------------------------------------------------------------------
# Conversion plan: which output tensor comes from which bytes of which CT2 variable
# ------------------------------------------------------------------------------------------


class Piece:
    """One ggml tensor: rows [row0, row0 + shape[0]) of a CT2 variable, as f32 or as stored."""

    __slots__ = ("name", "shape", "src", "row0", "to_f32")

    def __init__(self, name, shape, src, row0, to_f32):
        self.name = name
        self.shape = tuple(shape)  # PyTorch order; ggml ne is the reverse
        self.src = src
        self.row0 = row0
        self.to_f32 = to_f32

    def src_range(self):
        rb = self.src.row_bytes if len(self.src.shape) > 1 else CT2_SIZES[self.src.dtype]
        return self.row0 * rb, self.shape[0] * rb


def hparams_of(m: Ct2Model) -> dict:
    names = m.vars.keys()
    emb = m.var("decoder/embeddings/weight")
    epe = m.var("encoder/position_encodings/encodings")
    dpe = m.var("decoder/position_encodings/encodings")
    conv1 = m.var("encoder/conv1/weight")
    if len(emb.shape) != 2 or len(epe.shape) != 2 or len(dpe.shape) != 2 or len(conv1.shape) != 3:
        raise ConversionError("unexpected ranks of the embeddings / position encodings / conv1 weight")
    hp = {
        "n_vocab": emb.shape[0],
        "n_audio_ctx": epe.shape[0],
        "n_audio_state": epe.shape[1],
        "n_audio_head": m.var("encoder/num_heads").value,
        "n_audio_layer": count_layers(names, "encoder/"),
        "n_text_ctx": dpe.shape[0],
        "n_text_state": emb.shape[1],
        "n_text_head": m.var("decoder/num_heads").value,
        "n_text_layer": count_layers(names, "decoder/"),
        "n_mels": conv1.shape[1],
    }
    if hp["n_audio_state"] != hp["n_text_state"] or dpe.shape[1] != hp["n_text_state"]:
        raise ConversionError(f"encoder and decoder widths differ: {hp}")
    if conv1.shape != (hp["n_audio_state"], hp["n_mels"], 3):
        raise ConversionError(f"encoder/conv1/weight has shape {conv1.shape}")
    if hp["n_mels"] not in (80, 128):
        raise ConversionError(f"n_mels = {hp['n_mels']}; Whisper uses 80 or 128")
    if hp["n_audio_layer"] < 1 or hp["n_text_layer"] < 1:
        raise ConversionError(f"no encoder or decoder layers found: {hp}")
    for k in ("n_audio_head", "n_text_head"):
        if not hp[k] or hp["n_audio_state"] % hp[k]:
            raise ConversionError(f"{k} = {hp[k]} does not divide the width {hp['n_audio_state']}")
    return hp


def build_plan(m: Ct2Model, hp: dict) -> tuple[list[Piece], int]:
    """The ggml tensors in output order, and the file's ftype."""
    n = hp["n_audio_state"]
    used: set[str] = set()
    plan: list[Piece] = []

    wdtype = m.var("decoder/embeddings/weight").dtype
    if wdtype not in (CT2_F16, CT2_F32):
        raise ConversionError(
            f"the weights are {CT2_DTYPES[wdtype]}; only float16 or float32 CTranslate2 models convert "
            "losslessly (CTranslate2's int8 scales do not map to ggml's quantisation)"
        )
    ftype = GGML_F16 if wdtype == CT2_F16 else GGML_F32

    def src(name: str, shape: tuple) -> Ct2Var:
        v = m.var(name)
        if v.shape != tuple(shape):
            raise ConversionError(f"{name} has shape {v.shape}, expected {tuple(shape)}")
        if v.dtype not in (CT2_F16, CT2_F32):
            raise ConversionError(f"{name} is {CT2_DTYPES[v.dtype]}, expected float16 or float32")
        used.add(name)
        return v

    def weight(out: str, name: str, shape: tuple, rows=None, row0=0):
        v = src(name, shape)
        if v.dtype != wdtype:
            raise ConversionError(f"{name} is {CT2_DTYPES[v.dtype]} but the embeddings are {CT2_DTYPES[wdtype]}")
        plan.append(Piece(out, (rows or shape[0],) + tuple(shape[1:]), v, row0, False))

    def small(out: str, name: str, shape: tuple, out_shape=None, rows=None, row0=0):
        v = src(name, shape)
        s = out_shape or ((rows or shape[0],) + tuple(shape[1:]))
        plan.append(Piece(out, s, v, row0, v.dtype != CT2_F32))

    def zero_rows(name: str, row0: int, rows: int, what: str):
        v = m.var(name)
        fmt = "e" if v.dtype == CT2_F16 else "f"
        vals = struct.unpack(f"<{rows}{fmt}", m.read(v, row0 * CT2_SIZES[v.dtype], rows * CT2_SIZES[v.dtype]))
        if any(x != 0 for x in vals):
            raise ConversionError(f"{name}: the {what} bias is not zero; whisper.cpp has no {what} bias")

    def layer_norm(out: str, scope: str):
        small(out + ".weight", scope + "/gamma", (n,))
        small(out + ".bias", scope + "/beta", (n,))

    def linear(out: str, scope: str, shape: tuple):
        weight(out + ".weight", scope + "/weight", shape)
        small(out + ".bias", scope + "/bias", (shape[0],))

    def fused(outs: list, scope: str):
        """outs: [(name or None, has_bias)] for consecutive n-row blocks of scope's weight."""
        k = len(outs)
        for j, (out, has_bias) in enumerate(outs):
            weight(out + ".weight", scope + "/weight", (k * n, n), rows=n, row0=j * n)
            if has_bias:
                small(out + ".bias", scope + "/bias", (k * n,), rows=n, row0=j * n)
            else:
                zero_rows(scope + "/bias", j * n, n, out.rsplit(".", 1)[-1])
                used.add(scope + "/bias")

    def block(out: str, scope: str, cross: bool):
        sa = scope + "/self_attention"
        fused([(out + ".attn.query", True), (out + ".attn.key", False), (out + ".attn.value", True)], sa + "/linear_0")
        linear(out + ".attn.out", sa + "/linear_1", (n, n))
        layer_norm(out + ".attn_ln", sa + "/layer_norm")
        if cross:
            ca = scope + "/attention"
            linear(out + ".cross_attn.query", ca + "/linear_0", (n, n))
            fused([(out + ".cross_attn.key", False), (out + ".cross_attn.value", True)], ca + "/linear_1")
            linear(out + ".cross_attn.out", ca + "/linear_2", (n, n))
            layer_norm(out + ".cross_attn_ln", ca + "/layer_norm")
        linear(out + ".mlp.0", scope + "/ffn/linear_0", (4 * n, n))
        linear(out + ".mlp.2", scope + "/ffn/linear_1", (n, 4 * n))
        layer_norm(out + ".mlp_ln", scope + "/ffn/layer_norm")

    # Encoder, in the order of OpenAI's state dict.
    small("encoder.positional_embedding", "encoder/position_encodings/encodings", (hp["n_audio_ctx"], n))
    weight("encoder.conv1.weight", "encoder/conv1/weight", (n, hp["n_mels"], 3))
    small("encoder.conv1.bias", "encoder/conv1/bias", (n,), out_shape=(n, 1))
    weight("encoder.conv2.weight", "encoder/conv2/weight", (n, n, 3))
    small("encoder.conv2.bias", "encoder/conv2/bias", (n,), out_shape=(n, 1))
    for i in range(hp["n_audio_layer"]):
        block(f"encoder.blocks.{i}", f"encoder/layer_{i}", cross=False)
    layer_norm("encoder.ln_post", "encoder/layer_norm")

    # Decoder.
    small("decoder.positional_embedding", "decoder/position_encodings/encodings", (hp["n_text_ctx"], n))
    weight("decoder.token_embedding.weight", "decoder/embeddings/weight", (hp["n_vocab"], n))
    for i in range(hp["n_text_layer"]):
        block(f"decoder.blocks.{i}", f"decoder/layer_{i}", cross=True)
    layer_norm("decoder.ln", "decoder/layer_norm")

    # The output projection must be the token embedding (whisper.cpp ties them).
    proj = "decoder/projection/weight"
    if m.aliases.get(proj) == "decoder/embeddings/weight":
        pass
    elif proj in m.vars:
        pv, ev = m.vars[proj], m.vars["decoder/embeddings/weight"]
        if pv.shape != ev.shape or pv.dtype != ev.dtype or not same_bytes(m, pv, ev):
            raise ConversionError(f"{proj} differs from the token embedding; whisper.cpp ties the two")
        used.add(proj)
    else:
        raise ConversionError(f"{proj} is neither stored nor an alias of decoder/embeddings/weight")
    pb = "decoder/projection/bias"
    if pb in m.vars:
        zero_rows(pb, 0, m.vars[pb].shape[0], "output projection")
        used.add(pb)
    for alias, target in m.aliases.items():
        if alias != proj:
            raise ConversionError(f"unexpected alias {alias} -> {target}")

    # Every variable must be accounted for.
    for name, v in m.vars.items():
        if name in used:
            continue
        if name in CT2_SCALARS and not v.shape:
            allowed = CT2_SCALARS[name]
            if allowed is not None and v.value not in allowed:
                raise ConversionError(f"{name} = {v.value}; this converter expects {sorted(allowed)}")
            continue
        raise ConversionError(f"unexpected variable {name} {v.shape} {CT2_DTYPES[v.dtype]} (not part of a plain Whisper model)")
    return plan, ftype


def same_bytes(m: Ct2Model, a: Ct2Var, b: Ct2Var) -> bool:
    with open(m.path, "rb") as fa, open(m.path, "rb") as fb:
        fa.seek(a.offset)
        fb.seek(b.offset)
        left = a.nbytes
        while left:
            k = min(COPY_CHUNK, left)
            if fa.read(k) != fb.read(k):
                return False
            left -= k
    return True


# ------------------------------------------------------------------------------------------
# Mel filters and vocabulary
# ------------------------------------------------------------------------------------------


def _f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def _hz_to_mel(hz: float) -> float:
    # Slaney: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
    f_sp = 200.0 / 3
    if hz >= 1000.0:
        return 1000.0 / f_sp + math.log(hz / 1000.0) / (math.log(6.4) / 27.0)
    return hz / f_sp


def _mel_to_hz(mel: float) -> float:
    f_sp = 200.0 / 3
    min_log_mel = 1000.0 / f_sp
    if mel >= min_log_mel:
        return 1000.0 * math.exp((math.log(6.4) / 27.0) * (mel - min_log_mel))
    return f_sp * mel


def mel_filters(n_mels: int, sr: int = SAMPLE_RATE, n_fft: int = N_FFT) -> list[list[float]]:
    """librosa.filters.mel(sr, n_fft, n_mels, htk=False, norm="slaney", dtype=float32)."""
    n_bins = n_fft // 2 + 1
    bin_hz = 1.0 / (n_fft * (1.0 / sr))  # numpy.fft.rfftfreq's spacing
    fft_hz = [k * bin_hz for k in range(n_bins)]
    lo, hi = _hz_to_mel(0.0), _hz_to_mel(sr / 2.0)
    npts = n_mels + 2
    step = (hi - lo) / (npts - 1)  # numpy.linspace
    mels = [k * step + lo for k in range(npts)]
    mels[-1] = hi
    edges = [_mel_to_hz(x) for x in mels]
    rows = []
    for i in range(n_mels):
        down = edges[i + 1] - edges[i]
        up = edges[i + 2] - edges[i + 1]
        enorm = 2.0 / (edges[i + 2] - edges[i])
        row = []
        for k in range(n_bins):
            lower = (fft_hz[k] - edges[i]) / down
            upper = (edges[i + 2] - fft_hz[k]) / up
            w = _f32(max(0.0, min(lower, upper)))  # librosa fills a float32 array ...
            row.append(_f32(w * enorm))  # ... and normalises it in place
        rows.append(row)
    return rows


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table, in token-id order (ids 0..255)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def load_vocab(path: str) -> tuple[list[bytes], dict[str, int]]:
    """Base BPE tokens as raw bytes in id order, and the special tokens' ids."""
    try:
        with open(path, encoding="utf-8") as f:
            tok = json.load(f)
    except (OSError, ValueError) as e:
        raise ConversionError(f"{path}: cannot read tokenizer.json: {e}") from e
    model = tok.get("model") or {}
    if model.get("type") != "BPE" or not isinstance(model.get("vocab"), dict):
        raise ConversionError(f"{path}: not a Hugging Face byte-level BPE tokenizer.json")
    special = {t["content"]: t["id"] for t in tok.get("added_tokens", []) if t.get("special")}
    base = sorted((i, s) for s, i in model["vocab"].items() if s not in special)
    if [i for i, _ in base] != list(range(len(base))):
        raise ConversionError(f"{path}: base vocabulary ids are not 0..{len(base) - 1}")
    decode = {c: b for b, c in bytes_to_unicode().items()}
    out = []
    for i, s in base:
        try:
            out.append(bytes(decode[c] for c in s))
        except KeyError as e:
            raise ConversionError(f"{path}: token {i} {s!r} has a character outside GPT-2's byte alphabet") from e
    return out, special


def check_special_tokens(hp: dict, n_base: int, special: dict[str, int], where: str) -> None:
    """whisper.cpp derives the special token ids from n_vocab; they must match the tokenizer."""
    n_vocab = hp["n_vocab"]
    multilingual = n_vocab >= 51865
    expect_base = 50257 if multilingual else 50256
    if n_base != expect_base:
        raise ConversionError(f"{where}: {n_base} base tokens, whisper.cpp expects {expect_base} for n_vocab {n_vocab}")
    ids = {"eot": 50256, "sot": 50257, "translate": 50357, "transcribe": 50358, "solm": 50359, "prev": 50360, "nosp": 50361, "not": 50362, "beg": 50363}
    if multilingual:
        n_langs = n_vocab - 51765 - 1
        dt = n_langs - 98
        ids["eot"] += 1
        ids["sot"] += 1
        for k in ("translate", "transcribe", "solm", "prev", "nosp", "not", "beg"):
            ids[k] += dt
    names = {
        "eot": ["<|endoftext|>"],
        "sot": ["<|startoftranscript|>"],
        "translate": ["<|translate|>"],
        "transcribe": ["<|transcribe|>"],
        "solm": ["<|startoflm|>"],
        "prev": ["<|startofprev|>"],
        "nosp": ["<|nocaptions|>", "<|nospeech|>"],
        "not": ["<|notimestamps|>"],
    }
    for key, candidates in names.items():
        found = [special[c] for c in candidates if c in special]
        if multilingual or key in ("eot", "sot", "prev", "solm", "nosp", "not"):
            if not found:
                raise ConversionError(f"{where}: special token {candidates[0]} missing")
        if found and found[0] != ids[key]:
            raise ConversionError(f"{where}: {candidates[0]} has id {found[0]}, whisper.cpp assumes {ids[key]} for n_vocab {n_vocab}")
    n_timestamps = n_vocab - ids["beg"]
    if n_timestamps != 1501:
        raise ConversionError(f"{where}: n_vocab {n_vocab} leaves {n_timestamps} timestamp tokens, expected 1501 (0.00 .. 30.00 s)")


# ------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------

HPARAM_KEYS = ("n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer",
               "n_text_ctx", "n_text_state", "n_text_head", "n_text_layer", "n_mels")


def tensor_header(name: str, shape: tuple, ttype: int) -> bytes:
    nb = name.encode("utf-8")
    return struct.pack(f"<3i{len(shape)}i", len(shape), len(nb), ttype, *reversed(shape)) + nb


def piece_bytes_f32(m: Ct2Model, p: Piece, fsrc) -> bytes:
    start, length = p.src_range()
    fsrc.seek(p.src.offset + start)
    raw = fsrc.read(length)
    if not p.to_f32:
        return raw
    k = length // 2
    return struct.pack(f"<{k}f", *struct.unpack(f"<{k}e", raw))


def convert(model_path: str, tokenizer_path: str, out_path: str) -> dict:
    t0 = time.monotonic()
    m = Ct2Model(model_path)
    hp = hparams_of(m)
    plan, ftype = build_plan(m, hp)
    tokens, special = load_vocab(tokenizer_path)
    check_special_tokens(hp, len(tokens), special, tokenizer_path)
    filters = mel_filters(hp["n_mels"])

    out_dir = os.path.dirname(os.path.abspath(out_path))
    tmp = os.path.join(out_dir, f".{os.path.basename(out_path)}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as out, open(model_path, "rb") as fsrc:
            out.write(struct.pack("<i", GGML_MAGIC))
            out.write(struct.pack("<10i", *(hp[k] for k in HPARAM_KEYS)))
            out.write(struct.pack("<i", ftype))
            out.write(struct.pack("<2i", len(filters), len(filters[0])))
            for row in filters:
                out.write(struct.pack(f"<{len(row)}f", *row))
            out.write(struct.pack("<i", len(tokens)))
            for t in tokens:
                out.write(struct.pack("<i", len(t)) + t)
            for p in plan:
                ttype = GGML_F32 if (p.to_f32 or p.src.dtype == CT2_F32) else GGML_F16
                out.write(tensor_header(p.name, p.shape, ttype))
                if p.to_f32:
                    out.write(piece_bytes_f32(m, p, fsrc))
                    continue
                start, left = p.src_range()
                fsrc.seek(p.src.offset + start)
                while left:
                    chunk = fsrc.read(min(COPY_CHUNK, left))
                    if not chunk:
                        raise ConversionError(f"{model_path}: short read in {p.src.name}")
                    out.write(chunk)
                    left -= len(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, out_path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    elapsed = time.monotonic() - t0
    size = os.path.getsize(out_path)
    log(f"wrote {out_path}: {size} bytes, {len(plan)} tensors, {len(tokens)} tokens, ftype {ftype}, {elapsed:.1f}s")
    log("hparams: " + ", ".join(f"{k}={hp[k]}" for k in HPARAM_KEYS))
    return hp


# ------------------------------------------------------------------------------------------
# Verification (re-reads the ggml file; independent of the conversion plan above)
# ------------------------------------------------------------------------------------------


def expected_tensors(hp: dict, ftype: int) -> dict[str, tuple[int, tuple]]:
    """name -> (ggml type, ne), as whisper.cpp 1.8's whisper_model_load creates them."""
    wtype = GGML_F16 if ftype == 1 else GGML_F32
    vtype = GGML_F32 if wtype == GGML_F32 else GGML_F16  # conv kernels
    F32 = GGML_F32
    a, t = hp["n_audio_state"], hp["n_text_state"]
    e = {
        "encoder.positional_embedding": (F32, (a, hp["n_audio_ctx"])),
        "encoder.conv1.weight": (vtype, (3, hp["n_mels"], a)),
        "encoder.conv1.bias": (F32, (1, a)),
        "encoder.conv2.weight": (vtype, (3, a, a)),
        "encoder.conv2.bias": (F32, (1, a)),
        "encoder.ln_post.weight": (F32, (a,)),
        "encoder.ln_post.bias": (F32, (a,)),
    }

    def attn(p: str, s: int):
        e[p + ".query.weight"] = (wtype, (s, s))
        e[p + ".query.bias"] = (F32, (s,))
        e[p + ".key.weight"] = (wtype, (s, s))
        e[p + ".value.weight"] = (wtype, (s, s))
        e[p + ".value.bias"] = (F32, (s,))
        e[p + ".out.weight"] = (wtype, (s, s))
        e[p + ".out.bias"] = (F32, (s,))

    def common(p: str, s: int):
        e[p + ".mlp_ln.weight"] = (F32, (s,))
        e[p + ".mlp_ln.bias"] = (F32, (s,))
        e[p + ".mlp.0.weight"] = (wtype, (s, 4 * s))
        e[p + ".mlp.0.bias"] = (F32, (4 * s,))
        e[p + ".mlp.2.weight"] = (wtype, (4 * s, s))
        e[p + ".mlp.2.bias"] = (F32, (s,))
        e[p + ".attn_ln.weight"] = (F32, (s,))
        e[p + ".attn_ln.bias"] = (F32, (s,))
        attn(p + ".attn", s)

    for i in range(hp["n_audio_layer"]):
        common(f"encoder.blocks.{i}", a)
    e["decoder.positional_embedding"] = (F32, (t, hp["n_text_ctx"]))
    e["decoder.token_embedding.weight"] = (wtype, (t, hp["n_vocab"]))
    e["decoder.ln.weight"] = (F32, (t,))
    e["decoder.ln.bias"] = (F32, (t,))
    for i in range(hp["n_text_layer"]):
        p = f"decoder.blocks.{i}"
        common(p, t)
        e[p + ".cross_attn_ln.weight"] = (F32, (t,))
        e[p + ".cross_attn_ln.bias"] = (F32, (t,))
        attn(p + ".cross_attn", t)
    n_expected = 10 + 15 + 15 * hp["n_audio_layer"] + 24 * hp["n_text_layer"]  # the loader's context size
    assert len(e) <= n_expected
    return e


def verify(path: str, model_path: str | None = None) -> None:
    problems: list[str] = []
    size = os.path.getsize(path)
    with open(path, "rb") as f:

        def take(n: int) -> bytes:
            b = f.read(n)
            if len(b) != n:
                raise ConversionError(f"{path}: truncated at byte {f.tell()}")
            return b

        def ints(k: int):
            return struct.unpack(f"<{k}i", take(4 * k))

        (magic,) = ints(1)
        if magic != GGML_MAGIC:
            raise ConversionError(f"{path}: bad magic {magic:#x}, expected {GGML_MAGIC:#x}")
        hp = dict(zip(HPARAM_KEYS, ints(10)))
        (ftype,) = ints(1)
        if ftype not in (0, 1):
            problems.append(f"ftype {ftype}: this check knows 0 (f32) and 1 (f16)")
        if hp["n_audio_state"] != hp["n_text_state"]:
            problems.append("n_audio_state != n_text_state (whisper.cpp asserts they are equal)")
        names = {4: "tiny", 6: "base", 12: "small", 24: "medium", 32: "large"}
        kind = names.get(hp["n_audio_layer"], "unknown size")
        multilingual = hp["n_vocab"] >= 51865
        print(f"{path}: {size} bytes")
        print(f"  hparams: " + ", ".join(f"{k}={hp[k]}" for k in HPARAM_KEYS) + f", ftype={ftype}")
        print(f"  model: {kind}, {'multilingual' if multilingual else 'English-only'}")

        # Mel filters.
        n_mel, n_fft = ints(2)
        filt = struct.unpack(f"<{n_mel * n_fft}f", take(4 * n_mel * n_fft))
        if n_mel != hp["n_mels"] or n_fft != N_FFT // 2 + 1:
            problems.append(f"mel filters are {n_mel}x{n_fft}, expected {hp['n_mels']}x{N_FFT // 2 + 1}")
        else:
            sums = [sum(filt[r * n_fft:(r + 1) * n_fft]) for r in range(n_mel)]
            # Slaney normalisation gives every triangle unit area in Hz; bins are 40 Hz apart.
            bad = [r for r, s in enumerate(sums) if not 0.8 / 40 < s < 1.2 / 40]
            if bad or min(filt) < 0 or not all(math.isfinite(x) for x in filt):
                problems.append(f"implausible mel filter rows {bad[:5]} (sums {[sums[r] for r in bad[:5]]})")
            ref = [x for row in mel_filters(n_mel) for x in row]
            exact = list(filt) == ref
            if not exact:
                problems.append("mel filters differ from Whisper's librosa Slaney filters")
            print(f"  mel filters: {n_mel}x{n_fft}, row sums {min(sums):.5f}..{max(sums):.5f} (about 1/40), "
                  f"{'bit-identical to' if exact else 'DIFFERENT from'} librosa slaney")

        # Vocabulary.
        (n_tok,) = ints(1)
        toks = []
        for _ in range(n_tok):
            (ln,) = ints(1)
            if not 0 <= ln <= 128:
                raise ConversionError(f"{path}: token {len(toks)} has length {ln}")
            toks.append(take(ln))
        expect_tok = 50257 if multilingual else 50256
        if n_tok != expect_tok:
            problems.append(f"{n_tok} vocabulary entries, expected {expect_tok}")
        # Byte-level BPE: ids 0..255 are the 256 single bytes, in bytes_to_unicode order.
        if toks[:256] != [bytes([b]) for b in bytes_to_unicode()]:
            problems.append("tokens 0..255 are not the 256 single bytes in GPT-2 order")
        if multilingual and n_tok > 50256 and toks[50256] != b"":
            problems.append(f"token 50256 is {toks[50256]!r}; the multilingual vocabulary has an empty token there")
        if len(set(toks)) != n_tok:
            problems.append(f"{n_tok - len(set(toks))} duplicate vocabulary entries")
        print(f"  vocabulary: {n_tok} tokens (+{hp['n_vocab'] - n_tok} special/timestamp ids whisper.cpp names itself), "
              f"last {toks[-1]!r}")

        # Tensors.
        exp = expected_tensors(hp, ftype)
        seen: dict[str, tuple[int, tuple, int, int]] = {}
        by_type = {GGML_F32: 0, GGML_F16: 0}
        while f.tell() < size:
            n_dims, name_len, ttype = ints(3)
            if not 1 <= n_dims <= 4 or not 0 < name_len < 256:
                raise ConversionError(f"{path}: corrupt tensor header at byte {f.tell() - 12}")
            ne = ints(n_dims)
            name = take(name_len).decode("utf-8", "replace")
            count = 1
            for d in ne:
                count *= d
            esize = {GGML_F32: 4, GGML_F16: 2}.get(ttype)
            if esize is None:
                raise ConversionError(f"{path}: tensor {name} has type {ttype}")
            offset = f.tell()
            if offset + count * esize > size:
                raise ConversionError(f"{path}: tensor {name} runs past the end of the file")
            f.seek(count * esize, os.SEEK_CUR)
            if name in seen:
                problems.append(f"tensor {name} appears twice")
            seen[name] = (ttype, tuple(ne), offset, count)
            by_type[ttype] += count * esize
            want = exp.get(name)
            if want is None:
                problems.append(f"unknown tensor {name} (whisper.cpp refuses it)")
            elif want != (ttype, tuple(ne)):
                problems.append(f"tensor {name}: type {ttype} ne {tuple(ne)}, loader expects type {want[0]} ne {want[1]}")
        missing = [k for k in exp if k not in seen]
        if missing:
            problems.append(f"{len(missing)} tensors missing, e.g. {missing[:3]}")
        if f.tell() != size:
            problems.append("trailing bytes after the last tensor")
        print(f"  tensors: {len(seen)} of {len(exp)} expected by whisper.cpp's loader; "
              f"f16 {by_type[GGML_F16]} bytes, f32 {by_type[GGML_F32]} bytes")

        # f32 tensors: finite values, layer-norm gains of a sane size.
        for name, (ttype, ne, offset, count) in seen.items():
            if ttype != GGML_F32:
                continue
            f.seek(offset)
            vals = struct.unpack(f"<{count}f", f.read(4 * count))
            if not all(math.isfinite(x) for x in vals):
                problems.append(f"tensor {name} has non-finite values")
            if name.endswith("ln.weight") or name.endswith("ln_post.weight"):
                mean = sum(vals) / count
                if not 0.01 < abs(mean) < 100:
                    problems.append(f"layer norm {name} has mean gain {mean}")

        if model_path:
            problems += compare_with_ct2(path, seen, model_path, hp, ftype)

    if problems:
        for p in problems:
            print(f"  PROBLEM: {p}")
        raise ConversionError(f"{path}: {len(problems)} problem(s) found")
    print("  OK")


def compare_with_ct2(path: str, seen: dict, model_path: str, hp: dict, ftype: int) -> list[str]:
    """Every ggml tensor must equal its CTranslate2 source: same bytes, or the same values when
    widened from f16 to f32 (exact)."""
    problems = []
    m = Ct2Model(model_path)
    hp2 = hparams_of(m)
    if hp2 != hp:
        return [f"hparams differ from {model_path}'s: {hp2}"]
    plan, ftype2 = build_plan(m, hp2)
    if ftype2 != ftype:
        problems.append(f"ftype {ftype}, {model_path} gives {ftype2}")
    compared = 0
    with open(path, "rb") as fg, open(model_path, "rb") as fm:
        for p in plan:
            info = seen.get(p.name)
            if info is None:
                problems.append(f"{p.name} missing")
                continue
            ttype, ne, offset, count = info
            start, length = p.src_range()
            if p.to_f32:
                fg.seek(offset)
                got = fg.read(4 * count)
                fm.seek(p.src.offset + start)
                src = struct.unpack(f"<{length // 2}e", fm.read(length))
                back = struct.unpack(f"<{count}f", got)
                if list(src) != list(back):
                    problems.append(f"{p.name} (f32) does not equal {p.src.name} rows {p.row0}..")
            else:
                fg.seek(offset)
                fm.seek(p.src.offset + start)
                left = length
                if count * (2 if ttype == GGML_F16 else 4) != length:
                    problems.append(f"{p.name}: {count} elements, source slice has {length} bytes")
                    continue
                while left:
                    k = min(COPY_CHUNK, left)
                    if fg.read(k) != fm.read(k):
                        problems.append(f"{p.name} differs from {p.src.name} rows {p.row0}..")
                        break
                    left -= k
            compared += 1
    # The spot checks a reader can follow by hand: slices of the fused projections.
    n = hp["n_audio_state"]
    spots = [
        ("encoder.blocks.0.attn.query.weight", "encoder/layer_0/self_attention/linear_0/weight", 0),
        ("encoder.blocks.0.attn.key.weight", "encoder/layer_0/self_attention/linear_0/weight", 1),
        ("encoder.blocks.0.attn.value.weight", "encoder/layer_0/self_attention/linear_0/weight", 2),
        ("decoder.blocks.0.cross_attn.key.weight", "decoder/layer_0/attention/linear_1/weight", 0),
        ("decoder.blocks.0.cross_attn.value.weight", "decoder/layer_0/attention/linear_1/weight", 1),
    ]
    with open(path, "rb") as fg:
        for gname, cname, third in spots:
            v = m.var(cname)
            block = v.row_bytes * n
            if gname not in seen:
                continue
            _, _, offset, count = seen[gname]
            fg.seek(offset)
            ok = fg.read(block) == m.read(v, third * block, block)
            if not ok:
                problems.append(f"spot check {gname} != block {third} of {cname}")
            print(f"  spot check: {gname} == rows [{third * n}, {(third + 1) * n}) of {cname}: {'yes' if ok else 'NO'}")
    print(f"  lossless: {compared} tensors compared with {model_path} (bytes, or f16 values widened to f32)")
    return problems


# ------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="CTranslate2 model.bin (to convert; with --verify: compare every tensor with it)")
    ap.add_argument("--tokenizer", help="tokenizer.json of the same model")
    ap.add_argument("--out", help="ggml file to write (atomically replaced)")
    ap.add_argument("--verify", metavar="GGML", help="check a ggml file against whisper.cpp's loader instead of converting")
    args = ap.parse_args(argv)
    try:
        if args.verify:
            if args.out or args.tokenizer:
                ap.error("--verify takes only --model")
            verify(args.verify, args.model)
        else:
            if not (args.model and args.tokenizer and args.out):
                ap.error("converting needs --model, --tokenizer and --out")
            convert(args.model, args.tokenizer, args.out)
    except ConversionError as e:
        print(f"[ct2_to_ggml] error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"[ct2_to_ggml] error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
