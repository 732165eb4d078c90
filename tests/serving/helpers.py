"""Tiny random models for the serving tests, with weights large enough that greedy text varies."""

from __future__ import annotations

import torch

from tongues import (BloomConfig, BloomForCausalLM, GlmConfig, GlmForCausalLM, XGLMConfig, XGLMForCausalLM,
                     XLMConfig, XLMWithLMHeadModel)

VOCAB = 120


def lively(model, seed: int = 0):
    """Redraw every weight from N(0, 0.25) so a tiny model's greedy tokens change from step to step."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.25)
    return model.eval()


FAMILIES = {
    "bloom": lambda: BloomForCausalLM(BloomConfig(vocab_size=VOCAB, hidden_size=32, n_layer=2, n_head=4,
                                                  eos_token_id=2, pad_token_id=0)),
    "xglm": lambda: XGLMForCausalLM(XGLMConfig(vocab_size=VOCAB, d_model=32, num_layers=2, attention_heads=4,
                                               ffn_dim=64, max_position_embeddings=256, eos_token_id=2)),
    "glm": lambda: GlmForCausalLM(GlmConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                                            num_attention_heads=4, num_key_value_heads=2, intermediate_size=64,
                                            head_dim=8, pad_token_id=0, eos_token_id=[2, 3, 4],
                                            max_position_embeddings=256)),
    "xlm": lambda: XLMWithLMHeadModel(XLMConfig(vocab_size=VOCAB, emb_dim=32, n_layers=2, n_heads=4,
                                                max_position_embeddings=256, eos_index=2, pad_index=0,
                                                mask_token_id=5)),
}


def tiny(family: str, seed: int = 0):
    torch.manual_seed(seed)
    return lively(FAMILIES[family](), seed)


class LetterTokenizer:
    """Token id i is one letter (a-z cycling, 0..2 special): enough text for stop strings and streaming."""

    all_special_ids = [0, 1, 2]

    def decode(self, ids, skip_special_tokens: bool = True):
        return "".join(chr(97 + i % 26) for i in ids if not (skip_special_tokens and i in self.all_special_ids))

    def encode(self, text: str):
        return [3 + (ord(c) - 97 - 3) % 26 for c in text]


class LiveServer:
    """A uvicorn server on a free loopback port, in a thread, serving ``engine`` (or still loading without one)."""

    def __init__(self, engine=None, model_name: str = "tiny", api_key: str | None = None) -> None:
        import socket
        import threading
        import time

        import uvicorn

        from tongues.serving.api_server import attach, create_app

        self.app = create_app(model_name, api_key=api_key)
        self.engine = engine
        if engine is not None:
            attach(self.app, engine)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        if self.engine is not None:
            self.engine.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def demo_model_and_tokenizer():
    """The embedded demonstration BLOOM (real byte-level tokenizer, 1.3M parameters), in fp32."""
    from tongues import AutoModelForCausalLM
    from tongues.assets import default_model_path
    from tongues.tokenization import AutoTokenizer

    path = str(default_model_path())
    return AutoModelForCausalLM.from_pretrained(path, dtype="float32").eval(), AutoTokenizer.from_pretrained(path)
