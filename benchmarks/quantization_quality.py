"""Quality of weight-only quantisation on a *trained* model: argmax agreement with fp32 and held-out perplexity.

    python benchmarks/quantization_quality.py [--model DIR] [--block-size 128] [--max-blocks 200]

benchmarks/run.py reports argmax agreement on random-weight models, whose logits have near-ties
everywhere, so a tiny perturbation flips the argmax and the figure understates quality. This
script measures the same thing on a model that has learned something: by default the embedded
demonstration model, scored on the held-out slice of the UDHR texts it was not trained on
(tests/data/udhr, the last 10 % of each file's lines). For every method it prints the share of
positions whose argmax equals fp32's and the held-out perplexity.

Not a test: pytest does not collect this folder.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tongues.assets import default_model_path  # noqa: E402
from tongues.auto import AutoModelForCausalLM  # noqa: E402
from tongues.tokenization import AutoTokenizer  # noqa: E402
from tongues.training import read_documents, split_held_out, tokenize_and_pack  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="a checkpoint folder (default: the embedded model)")
    parser.add_argument("--data", default=str(ROOT / "tests" / "data" / "udhr"))
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--max-blocks", type=int, default=200)
    parser.add_argument("--methods", default="int8,int4")
    opts = parser.parse_args(argv)
    path = opts.model or str(default_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    _, held = split_held_out(read_documents(sorted(Path(opts.data).glob("*.txt"))), 0.1)
    blocks = tokenize_and_pack(held, tokenizer, opts.block_size)[: opts.max_blocks]

    def run(method: str | None):
        model = AutoModelForCausalLM.from_pretrained(path, quantization=method).eval()
        with torch.inference_mode():
            logits = torch.cat([model(blocks[i:i + 16]).logits for i in range(0, len(blocks), 16)])
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), blocks[:, 1:].flatten())
        return logits.argmax(-1), math.exp(loss.item())

    reference, fp32_ppl = run(None)
    results = {"model": path, "positions": reference.numel(), "fp32_perplexity": fp32_ppl}
    print(f"{path}: {len(blocks)} held-out blocks of {opts.block_size} tokens; fp32 perplexity {fp32_ppl:.2f}")
    for method in opts.methods.split(","):
        argmax, ppl = run(method)
        agreement = (argmax == reference).float().mean().item()
        results[method] = {"argmax_agreement": agreement, "perplexity": ppl}
        print(f"  {method}: argmax agrees with fp32 at {100 * agreement:.2f} % of positions; perplexity {ppl:.2f}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
