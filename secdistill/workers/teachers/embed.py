"""Sentence embeddings from an exported MiniLM ONNX graph (onnxruntime + tokenizers, no torch).

``secdistill teacher build`` exports the encoder with masked mean pooling and l2 normalisation inside
the graph (output ``sentence_embedding``), so the build and the worker cannot pool differently. A
graph that only outputs token states is mean-pooled here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

EMBEDDER = "embedder.onnx"
TOKENIZER = "tokenizer.json"


class Embedder:
    """Batched text embeddings (unit vectors) from an ONNX encoder that outputs token states."""

    def __init__(self, model_path: Path, tokenizer_path: Path, max_length: int = 128,
                 threads: int = 0) -> None:
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.enable_truncation(max_length)
        self.tokenizer.enable_padding()
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(model_path), opts, providers=["CPUExecutionProvider"]
        )
        self.inputs = {i.name for i in self.session.get_inputs()}
        out = self.session.get_outputs()[0]
        self.pooled = out.name == "sentence_embedding"
        self.output = out.name
        self.dim = out.shape[-1] if isinstance(out.shape[-1], int) else None

    @classmethod
    def load(cls, folder: Path, max_length: int = 128, threads: int = 0) -> Embedder:
        """The embedder artefacts of a teacher version."""
        return cls(folder / EMBEDDER, folder / TOKENIZER, max_length, threads)

    def embed(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Unit-norm float32 embeddings, shape (n, dim); batches are length-sorted to cut padding."""
        out = np.zeros((len(texts), self.dim or 0), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            vec = self._embed_batch([texts[i] for i in idx])
            if out.shape[1] != vec.shape[1]:
                out = np.zeros((len(texts), vec.shape[1]), dtype=np.float32)
                self.dim = vec.shape[1]
            out[idx] = vec
        return out

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        states = np.asarray(self.session.run([self.output], feeds)[0], dtype=np.float32)
        if self.pooled:
            return states
        m = mask[:, :, None].astype(np.float32)
        pooled = (states * m).sum(axis=1) / np.clip(m.sum(axis=1), 1.0, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        out: np.ndarray = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return out
