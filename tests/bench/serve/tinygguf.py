"""Write a tiny random-weight llama GGUF for end-to-end tests (no download, a few kB).

Its compute per token is negligible, so a server's fixed per-step costs dominate and batching
several streams raises throughput the way it does on a GPU. The vocabulary is ASCII only (SPM:
a space, lowercase letters and digits with and without a leading space, and byte fallback for
the rest of 0x00-0x7F), so any generated token
is valid text and every token becomes one streamed event.
"""

from __future__ import annotations

from pathlib import Path


def write_tiny_llama(path: Path, *, n_embd: int = 64, n_layer: int = 2, n_ff: int = 128) -> Path:
    import gguf
    import numpy as np

    rng = np.random.default_rng(0)
    tokens: list[bytes] = [b"<unk>", b"<s>", b"</s>"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    for b in range(128):
        tokens.append(f"<0x{b:02X}>".encode())
        types.append(gguf.TokenType.BYTE)
    tokens.append("\u2581".encode())  # "▁": a space
    types.append(gguf.TokenType.NORMAL)
    for ch in "abcdefghijklmnopqrstuvwxyz0123456789":
        tokens.append(("\u2581" + ch).encode())  # "▁a": a word start
        types.append(gguf.TokenType.NORMAL)
        tokens.append(ch.encode())
        types.append(gguf.TokenType.NORMAL)
    n_vocab = len(tokens)
    scores = [0.0] * 3 + [0.0] * 128 + [-float(i) for i in range(n_vocab - 131)]

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("rigkit-tiny-random")
    w.add_context_length(2048)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(4)
    w.add_head_count_kv(4)
    w.add_rope_dimension_count(n_embd // 4)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)

    def t(name: str, *shape: int) -> None:
        w.add_tensor(name, (rng.standard_normal(shape) * 0.05).astype(np.float32))

    t("token_embd.weight", n_vocab, n_embd)
    w.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    t("output.weight", n_vocab, n_embd)
    for i in range(n_layer):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            t(f"blk.{i}.{name}.weight", n_embd, n_embd)
        t(f"blk.{i}.ffn_gate.weight", n_ff, n_embd)
        t(f"blk.{i}.ffn_up.weight", n_ff, n_embd)
        t(f"blk.{i}.ffn_down.weight", n_embd, n_ff)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
