"""tongues as an lm-evaluation-harness model: ``lm_eval.simple_evaluate(model=LMEvalModel(path), tasks=[...])``.

Needs the optional extra: ``pip install 'tongues[eval]'`` (lm-eval 0.4.13). Importing this module
registers the model as ``tongues`` in lm-eval's registry, so ``model="tongues",
model_args="pretrained=DIR"`` works too. Scoring goes through ``tongues.eval.Scorer``, the code
``tongues eval`` uses, so both give the same numbers.

Example::

    import lm_eval
    from tongues.eval import LMEvalModel

    results = lm_eval.simple_evaluate(model=LMEvalModel("path/to/checkpoint"), tasks=["xcopa_zh"], limit=20)
"""

from __future__ import annotations

try:
    from lm_eval.api.model import TemplateLM
    from lm_eval.api.registry import register_model
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("tongues.eval.LMEvalModel needs lm-evaluation-harness: pip install 'tongues[eval]' "
                      f"(lm-eval==0.4.13); importing it failed: {err}") from None

from .scoring import Scorer


@register_model("tongues")
class LMEvalModel(TemplateLM):
    """An lm-eval ``TemplateLM`` backed by a tongues causal LM.

    Give ``pretrained`` (a checkpoint folder or hub id, loaded with ``dtype`` and ``quantization``), or
    an already loaded ``model`` and ``tokenizer``. ``batch_size`` sequences go through one forward;
    ``max_length`` defaults to lm-eval's choice for the checkpoint.
    """

    def __init__(self, pretrained: str | None = None, model=None, tokenizer=None, batch_size: int | str = 16,
                 dtype: str = "auto", quantization: str | None = None, max_length: int | None = None,
                 device: str = "cpu", **unused):
        super().__init__()
        if unused:
            raise TypeError(f"LMEvalModel got unknown argument(s) {', '.join(sorted(unused))}; it takes pretrained, "
                            "model, tokenizer, batch_size, dtype, quantization, max_length and device")
        if model is None:
            if pretrained is None:
                raise ValueError("LMEvalModel needs pretrained=<checkpoint folder or hub id>, or model= and tokenizer=")
            from ..auto import AutoModelForCausalLM
            from ..tokenization import AutoTokenizer

            kwargs = {"dtype": dtype, "device": device}
            if quantization:
                kwargs["quantization"] = quantization
            model = AutoModelForCausalLM.from_pretrained(pretrained, **kwargs)
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(pretrained)
        elif tokenizer is None:
            raise ValueError("LMEvalModel got model= without tokenizer=; give both, or pretrained=")
        if str(batch_size).startswith("auto"):
            batch_size = 16
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.scorer = Scorer(model, tokenizer, batch_size=int(batch_size),
                             max_length=int(max_length) if max_length else None)

    @property
    def eot_token_id(self) -> int:
        return self.scorer.eot_token_id

    @property
    def prefix_token_id(self) -> int:
        return self.scorer.prefix_token_id

    @property
    def max_length(self) -> int:
        return self.scorer.max_length

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
        return self.scorer.encode(string, add_special_tokens)

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs) -> list[tuple[float, bool]]:
        return self.scorer.loglikelihood_tokens([(context, continuation) for _, context, continuation in requests])

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        return self.scorer.loglikelihood_rolling([request.args[0] for request in requests])

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Greedy continuation of each context, cut at the first of its ``until`` strings."""
        import torch

        outputs = []
        for request in requests:
            context, options = request.args
            options = dict(options or {})
            until = options.pop("until", None) or []
            if isinstance(until, str):
                until = [until]
            max_new_tokens = int(options.pop("max_gen_toks", 256))
            ids = self.scorer.encode(context)[-self.max_length:]
            with torch.inference_mode():
                generated = self.model.generate(torch.tensor([ids]), max_new_tokens=max_new_tokens, do_sample=False)
            text = self.tokenizer.decode(generated[0, len(ids):].tolist(), skip_special_tokens=True)
            for stop in until:
                if stop and stop in text:
                    text = text.split(stop)[0]
            outputs.append(text)
        return outputs
