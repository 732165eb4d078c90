"""Make the seed-era golden files for tongues' TF and Flax classes (tests/tf_flax/test_golden.py reads them).

transformers 4.57.6 is the last release with TFXGLM*, TFXLM*, FlaxXGLM*, FlaxBloom*. Run this script in a
separate virtualenv holding it (never in tongues' own venv, whose transformers is the v5 oracle):

    python -m venv /work/venv457-fw
    /work/venv457-fw/bin/pip install torch==2.13.0 transformers==4.57.6 jax flax tensorflow-cpu tf-keras \
        safetensors
    /work/venv457-fw/bin/python tests/data/tf_flax/make_golden.py

It writes, under tests/data/tf_flax/golden/:
- <case>/: a tiny random PyTorch checkpoint made by transformers (model.safetensors, config.json) and the
  same weights saved by transformers' own Flax (flax_model.msgpack) or TF (tf_model.h5) class;
- golden.npz: outputs of transformers' Flax/TF classes on fixed inputs (keys "<case>/<class>/<field>");
- versions.json: the package versions this ran with;
- compat.json: whether transformers' Flax/TF classes load the msgpack/h5 files tongues writes, and whether
  their outputs then equal transformers' own (checkpoint compatibility in that direction).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
OUT = os.path.join(HERE, "golden")
sys.path.insert(0, ROOT)  # tongues itself, for the compatibility check

import flax  # noqa: E402
import jax  # noqa: E402
import tensorflow as tf  # noqa: E402
import transformers  # noqa: E402

# The same inputs as tests/tf_flax: row 0 left-padded for the decoders, right-padded for XLM.
IDS = np.array([[1, 1, 5, 6, 7, 8], [3, 9, 3, 4, 5, 60]], dtype=np.int32)
MASK = np.array([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]], dtype=np.int32)
POS = np.maximum(MASK.cumsum(-1) - 1, 0).astype(np.int32)
XLM_IDS = np.array([[5, 6, 7, 8, 2, 2], [9, 10, 11, 12, 13, 14]], dtype=np.int32)
XLM_MASK = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=np.int32)
XLM_LANGS = np.array([[0, 0, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], dtype=np.int32)
NEW_TOKENS = 5

golden: dict[str, np.ndarray] = {}
compat: dict[str, dict] = {}


def pt_checkpoint(case: str, cls, config) -> str:
    torch.manual_seed(0)
    model = cls(config).eval()
    path = os.path.join(OUT, case)
    shutil.rmtree(path, ignore_errors=True)
    model.save_pretrained(path, safe_serialization=True)
    return path


def record(key: str, value) -> None:
    golden[key] = np.asarray(value)


def check_ours_load_in_reference(case, ours_cls, ref_cls, path, run, golden_key):
    """tongues loads the PyTorch checkpoint and saves its own msgpack/h5; transformers loads that file and
    must give the outputs it gave from the PyTorch checkpoint (recorded under ``golden_key``)."""
    ours = ours_cls.from_pretrained(path, from_pt=True)
    with tempfile.TemporaryDirectory() as tmp:
        ours.save_pretrained(tmp)
        theirs = ref_cls.from_pretrained(tmp)
        diff = float(np.max(np.abs(np.asarray(run(theirs)) - golden[golden_key])))
    compat[f"{case}/{ref_cls.__name__}"] = {"loads": True, "max_abs_diff": diff, "ok": diff <= 1e-5}


def bloom() -> None:
    from tongues.models.bloom.modeling_flax_bloom import FlaxBloomForCausalLM as OursLM

    config = transformers.BloomConfig(vocab_size=96, hidden_size=32, n_layer=2, n_head=4, pad_token_id=0,
                                      eos_token_id=2, bos_token_id=1)
    path = pt_checkpoint("bloom", transformers.BloomForCausalLM, config)
    lm = transformers.FlaxBloomForCausalLM.from_pretrained(path, from_pt=True)
    record("bloom/FlaxBloomForCausalLM/logits", lm(IDS, attention_mask=MASK).logits)
    record("bloom/FlaxBloomForCausalLM/greedy",
           lm.generate(IDS, attention_mask=MASK, max_new_tokens=NEW_TOKENS, do_sample=False).sequences)
    base = transformers.FlaxBloomModel.from_pretrained(path, from_pt=True)
    record("bloom/FlaxBloomModel/last_hidden_state", base(IDS, attention_mask=MASK).last_hidden_state)
    lm.save_pretrained(path)  # flax_model.msgpack written by transformers
    check_ours_load_in_reference("bloom", OursLM, transformers.FlaxBloomForCausalLM, path,
                                 lambda m: m(IDS, attention_mask=MASK).logits, "bloom/FlaxBloomForCausalLM/logits")


def xglm() -> None:
    from tongues.models.xglm.modeling_flax_xglm import FlaxXGLMForCausalLM as OursFlax
    from tongues.models.xglm.modeling_tf_xglm import TFXGLMForCausalLM as OursTF

    config = transformers.XGLMConfig(vocab_size=96, d_model=32, ffn_dim=64, num_layers=2, attention_heads=4,
                                     max_position_embeddings=64, dropout=0.0, attention_dropout=0.0)
    path = pt_checkpoint("xglm", transformers.XGLMForCausalLM, config)
    flax_lm = transformers.FlaxXGLMForCausalLM.from_pretrained(path, from_pt=True)
    record("xglm/FlaxXGLMForCausalLM/logits", flax_lm(IDS, attention_mask=MASK, position_ids=POS).logits)
    record("xglm/FlaxXGLMForCausalLM/greedy",
           flax_lm.generate(IDS, attention_mask=MASK, max_new_tokens=NEW_TOKENS, do_sample=False).sequences)
    record("xglm/FlaxXGLMModel/last_hidden_state", transformers.FlaxXGLMModel.from_pretrained(path, from_pt=True)(
        IDS, attention_mask=MASK, position_ids=POS).last_hidden_state)
    tf_lm = transformers.TFXGLMForCausalLM.from_pretrained(path, from_pt=True)
    record("xglm/TFXGLMForCausalLM/logits", tf_lm(IDS, attention_mask=MASK, position_ids=POS).logits)
    record("xglm/TFXGLMForCausalLM/greedy",
           tf_lm.generate(IDS, attention_mask=MASK, max_new_tokens=NEW_TOKENS, do_sample=False))
    # transformers 4.57.6's TFXGLMModel.call drops position_ids (never passes them on), so the base model
    # is recorded with default positions; tongues honours position_ids (docs/frameworks.md).
    record("xglm/TFXGLMModel/last_hidden_state", transformers.TFXGLMModel.from_pretrained(path, from_pt=True)(
        IDS, attention_mask=MASK).last_hidden_state)
    flax_lm.save_pretrained(path)
    tf_lm.save_pretrained(path)
    check_ours_load_in_reference("xglm", OursFlax, transformers.FlaxXGLMForCausalLM, path,
                                 lambda m: m(IDS, attention_mask=MASK, position_ids=POS).logits,
                                 "xglm/FlaxXGLMForCausalLM/logits")
    check_ours_load_in_reference("xglm", OursTF, transformers.TFXGLMForCausalLM, path,
                                 lambda m: m(IDS, attention_mask=MASK, position_ids=POS).logits,
                                 "xglm/TFXGLMForCausalLM/logits")


XLM_HEADS = {
    "XLMModel": "last_hidden_state",
    "XLMWithLMHeadModel": "logits",
    "XLMForSequenceClassification": "logits",
    "XLMForTokenClassification": "logits",
    "XLMForQuestionAnsweringSimple": "start_logits",
    "XLMForMultipleChoice": "logits",
}


def xlm() -> None:
    from tongues.models.xlm import modeling_tf_xlm as ours

    config = transformers.XLMConfig(vocab_size=50, emb_dim=16, n_layers=2, n_heads=2, n_langs=2,
                                    max_position_embeddings=40, dropout=0.0, attention_dropout=0.0, num_labels=2,
                                    pad_token_id=2,
                                    # TFXLMForMultipleChoice reads initializer_range, which XLMConfig lacks.
                                    initializer_range=0.02)
    for name, field in XLM_HEADS.items():
        case = f"xlm_{name}"
        path = pt_checkpoint(case, getattr(transformers, name), config)
        model = getattr(transformers, "TF" + name).from_pretrained(path, from_pt=True)
        if name == "XLMForMultipleChoice":
            inputs = {"input_ids": np.stack([XLM_IDS, XLM_IDS[::-1]]),
                      "attention_mask": np.stack([XLM_MASK, XLM_MASK[::-1]])}
        else:
            inputs = {"input_ids": XLM_IDS, "attention_mask": XLM_MASK, "langs": XLM_LANGS}
        record(f"{case}/TF{name}/{field}", getattr(model(**inputs), field))
        model.save_pretrained(path)
        check_ours_load_in_reference(case, getattr(ours, "TF" + name), getattr(transformers, "TF" + name), path,
                                     lambda m, inputs=inputs, field=field: getattr(m(**inputs), field),
                                     f"{case}/TF{name}/{field}")


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    bloom()
    xglm()
    xlm()
    np.savez(os.path.join(OUT, "golden.npz"), **golden)
    versions = {"transformers": transformers.__version__, "torch": torch.__version__, "jax": jax.__version__,
                "flax": flax.__version__, "tensorflow": tf.__version__, "numpy": np.__version__,
                "python": sys.version.split()[0]}
    with open(os.path.join(OUT, "versions.json"), "w") as f:
        json.dump(versions, f, indent=2, sort_keys=True)
    with open(os.path.join(OUT, "compat.json"), "w") as f:
        json.dump(compat, f, indent=2, sort_keys=True)
    bad = [key for key, entry in compat.items() if not entry["ok"]]
    print(json.dumps(versions), f"{len(golden)} arrays", "compat failures:", bad or "none")
    if bad:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
