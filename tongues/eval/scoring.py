"""Log-likelihood scoring under lm-evaluation-harness 0.4's rules, written once for the CLI and the adapter.

The rules follow ``lm_eval.api.model.TemplateLM`` and ``lm_eval.models.huggingface.HFLM`` (0.4.13):

* trailing spaces move from the context to the continuation (``TemplateLM._encode_pair``);
* the continuation's tokens are those of ``encode(context + continuation)`` after ``encode(context)``;
* an empty context becomes the prefix token (BOS, else EOS), unless the continuation already starts
  with it (``TemplateLM.loglikelihood``);
* ``encode`` adds special tokens as the tokenizer does by default, except for a string that already
  starts with the prefix token's text (``HFLM.tok_encode``);
* context + continuation longer than ``max_length + 1`` tokens loses tokens on the left;
* ``is_greedy``: every continuation token is the argmax of its position's logits;
* rolling log-likelihood: disjoint windows of ``max_length`` tokens, the first one after the prefix
  token (``lm_eval.utils.get_rolling_token_windows`` with ``context_len=1``).

Example::

    scorer = Scorer(model, tokenizer)
    [(logprob, is_greedy)] = scorer.loglikelihood([("Le chat", " dort")])
"""

from __future__ import annotations

import inspect
import math
import re
import sys
from typing import Callable, Iterable, Sequence

# The sentinel transformers writes as ``model_max_length`` when a tokenizer sets none (lm_eval.models.utils).
TOKENIZER_INFINITY = 1000000000000000019884624838656
DEFAULT_MAX_LENGTH = 2048

TokenRequest = tuple[list[int], list[int]]  # (context ids, continuation ids)
# The scorer caches the shared prefixes of a window of at most this many batches of sequences, holding at
# most this many prefix tokens per sequence of a batch, then runs their remaining tokens sorted by length.
WINDOW_BATCHES = 16
WINDOW_PREFIX_TOKENS = 128
# A prefill of shared prefixes holds at most this many padded tokens (unless one prefix is longer).
PREFIX_BATCH_TOKENS = 1024
# The language-model head runs on at most this many rows at a time (see Scorer._log_probs).
HEAD_ROWS = 128


def resolve_max_length(config, tokenizer, default: int = DEFAULT_MAX_LENGTH) -> int:
    """The context length lm-eval uses: the config's n_positions / max_position_embeddings / n_ctx,
    else the tokenizer's ``model_max_length``, else ``default`` (``lm_eval.models.utils.resolve_max_length``)."""
    cfg = getattr(config, "text_config", None) or config
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(cfg, attr, None)
        if value is not None:
            return int(value)
    model_max_length = getattr(tokenizer, "model_max_length", None)
    if model_max_length is not None and model_max_length != TOKENIZER_INFINITY:
        return int(model_max_length)
    return default


def rolling_windows(tokens: list[int], prefix_token: int, max_length: int) -> list[TokenRequest]:
    """Disjoint (context, continuation) windows that score every token of ``tokens`` once.

    The first window predicts ``tokens[:max_length]`` after ``prefix_token``; each later window predicts
    the next ``max_length`` tokens given the ``max_length - len(predicted)`` tokens before them, i.e. a
    full window of context (``lm_eval.utils.get_rolling_token_windows`` + ``make_disjoint_window``).
    """
    windows: list[TokenRequest] = []
    if not tokens:
        return windows
    first = min(max_length, len(tokens))
    windows.append(([prefix_token], tokens[:first]))
    predicted = first
    while predicted < len(tokens):
        count = min(len(tokens) - predicted, max_length)
        end = predicted + count
        inputs = tokens[max(0, end - max_length - 1):end - 1]
        windows.append((inputs[:len(inputs) - (count - 1)], tokens[end - count:end]))
        predicted += count
    return windows


def strided_windows(tokens: list[int], prefix_token: int, max_length: int, stride: int) -> list[TokenRequest]:
    """(context, continuation) windows for strided sliding-window perplexity.

    The first window scores ``tokens[:max_length]`` after ``prefix_token``; each next one moves ``stride``
    tokens on and scores only those new tokens, each seeing up to ``max_length`` tokens before it (the
    scorer cuts the context on the left). ``stride == max_length`` is lm-eval's rolling rule; a smaller
    stride gives every token more context, at ``max_length / stride`` times the compute.
    """
    if not 1 <= stride <= max_length:
        raise ValueError(f"stride must be between 1 and max_length ({max_length}); got {stride}")
    if not tokens:
        return []
    end = min(max_length, len(tokens))
    windows: list[TokenRequest] = [([prefix_token], tokens[:end])]
    while end < len(tokens):
        start, end = end, min(end + stride, len(tokens))
        windows.append((tokens[max(0, start - max_length):start], tokens[start:end]))
    return windows


class Scorer:
    """Scores (context, continuation) pairs and whole texts with a causal LM, batched and sorted by length.

    ``model`` is any tongues causal LM (its plain ``model(input_ids, attention_mask).logits``, (B, T, V),
    is used); ``tokenizer`` a tongues tokenizer. ``batch_size`` sequences go through one forward.
    ``max_length`` defaults to lm-eval's choice (see ``resolve_max_length``).
    """

    def __init__(self, model, tokenizer, batch_size: int = 16, max_length: int | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1; got {batch_size}")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length or resolve_max_length(model.config, tokenizer)
        if self.max_length < 1:
            raise ValueError(f"max_length must be at least 1; got {self.max_length}")
        self.eot_token_id = tokenizer.eos_token_id
        self.prefix_token_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        if self.prefix_token_id is None:
            raise ValueError("the tokenizer has neither a BOS nor an EOS token, so an empty context has no prefix "
                             "token; set bos_token or eos_token in its tokenizer_config.json")
        self._prefix_text = tokenizer.decode([self.prefix_token_id])
        self._keeps_logits = "logits_to_keep" in inspect.signature(model.forward).parameters
        # A tongues causal LM's logits are its ``lm_head`` of its bare model's last hidden states: the scorer
        # runs the two itself, to apply the head to the scored positions alone.
        from ..heads import CausalLMHead

        self._head = model.lm_head if isinstance(model, CausalLMHead) else None
        # Families with rotary, sinusoidal or learned positions take them; ALiBi (BLOOM) reads the mask.
        base = getattr(model, getattr(model, "base_model_prefix", ""), model)
        called = base if self._head is not None else model
        self._takes_positions = "position_ids" in inspect.signature(called.forward).parameters

    # -- tokenization ------------------------------------------------------------------------------
    def encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
        """``tokenizer.encode`` with its default special tokens, none for text that already starts with
        the prefix token (``HFLM.tok_encode``)."""
        if add_special_tokens is None:
            add_special_tokens = not text.startswith(self._prefix_text)
        return list(self.tokenizer.encode(text, add_special_tokens=add_special_tokens))

    def encode_pair(self, context: str, continuation: str) -> TokenRequest:
        """(context ids, continuation ids) under lm-eval's rules, including the empty context."""
        if context == "":
            continuation_ids = self.encode(continuation, add_special_tokens=False)
            if continuation_ids and continuation_ids[0] == self.prefix_token_id:
                return continuation_ids[:1], continuation_ids[1:]
            return [self.prefix_token_id], continuation_ids
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        whole = self.encode(context + continuation)
        context_ids = self.encode(context)
        return context_ids, whole[len(context_ids):]

    # -- scoring -----------------------------------------------------------------------------------
    def loglikelihood(self, requests: Sequence[tuple[str, str]], progress: Callable[[int], None] | None = None
                      ) -> list[tuple[float, bool]]:
        """(summed log-probability of the continuation, is_greedy) for each (context, continuation)."""
        return self.loglikelihood_tokens([self.encode_pair(c, x) for c, x in requests], progress)

    def loglikelihood_rolling(self, texts: Sequence[str], progress: Callable[[int], None] | None = None
                              ) -> list[float]:
        """Summed log-probability of each whole text, every token scored once (lm-eval's rolling rule)."""
        windows, owners = [], []
        for index, text in enumerate(texts):
            for window in rolling_windows(self.encode(text), self.prefix_token_id, self.max_length):
                windows.append(window)
                owners.append(index)
        totals = [0.0] * len(texts)
        for owner, (logprob, _) in zip(owners, self.loglikelihood_tokens(windows, progress)):
            totals[owner] += logprob
        return totals

    def perplexity(self, text: str, stride: int | None = None, progress: Callable[[int], None] | None = None
                   ) -> dict[str, float]:
        """Strided sliding-window perplexity of ``text`` (``stride`` defaults to ``max_length``: disjoint
        windows, lm-eval's rule): tokens, summed log-probability, token / word / byte perplexity, bits per byte."""
        tokens = self.encode(text)
        windows = strided_windows(tokens, self.prefix_token_id, self.max_length, stride or self.max_length)
        logprob = sum(score for score, _ in self.loglikelihood_tokens(windows, progress))
        words, size = len(re.split(r"\s+", text)), len(text.encode("utf-8"))
        return {"tokens": len(tokens), "logprob": logprob,
                "token_perplexity": math.exp(-logprob / max(len(tokens), 1)),
                "word_perplexity": math.exp(-logprob / words), "byte_perplexity": math.exp(-logprob / size),
                "bits_per_byte": -logprob / size / math.log(2)}

    def loglikelihood_tokens(self, requests: Sequence[TokenRequest], progress: Callable[[int], None] | None = None
                             ) -> list[tuple[float, bool]]:
        """(summed log-probability, is_greedy) of each continuation given its context, as token ids.

        Identical sequences are scored once. Sequences that start with the same tokens (the choices of one
        document) form a group whose common prefix runs once into a key/value cache; each sequence's
        remaining tokens then run on top of it (:func:`shared_prefix_groups`). Groups go longest prefix
        first, in windows of a few batches: the window's prefixes run ``batch_size`` at a time, then its
        sequences' remaining tokens, sorted by length, ``batch_size`` at a time, right-padded, with the
        language-model head applied to the continuation positions only.
        """
        import torch

        results: list[tuple[float, bool] | None] = [None] * len(requests)
        unique: dict[tuple[tuple[int, ...], int], list[int]] = {}
        for index, (context, continuation) in enumerate(requests):
            if not context or not continuation:
                raise ValueError(f"request {index}: the context and the continuation must each hold at least one "
                                 f"token; got {len(context)} and {len(continuation)}")
            if len(continuation) > self.max_length:
                raise ValueError(f"request {index}: the continuation is {len(continuation)} tokens, longer than "
                                 f"the model's {self.max_length}-token window")
            # The model sees (context + continuation) minus its last token, cut to the window on the left.
            inputs = tuple((list(context) + list(continuation))[-(self.max_length + 1):][:-1])
            unique.setdefault((inputs, len(continuation)), []).append(index)
        groups = shared_prefix_groups(list(unique))
        # Longest prefix first, then longest sequence: neighbouring prefixes pad little.
        groups.sort(key=lambda group: (-group[0], -max(len(inputs) for inputs, _ in group[1])))
        window: list[tuple[int, list]] = []
        with torch.inference_mode():
            for group in groups:
                rows = sum(len(members) for _, members in window) + len(group[1])
                tokens = sum(length for length, _ in window) + group[0]
                if window and (rows > WINDOW_BATCHES * self.batch_size
                               or tokens > WINDOW_PREFIX_TOKENS * self.batch_size):
                    self._score_window(window, requests, unique, results, progress)
                    window = []
                window.append(group)
            if window:
                self._score_window(window, requests, unique, results, progress)
        return results  # type: ignore[return-value]

    def _forward(self, ids, mask, positions, cache, rows=None, columns=None):
        """The outputs at positions ``(rows, columns)`` (two (N,) index tensors; none without them), and the
        cache when one is given. A tongues causal LM runs its bare model, and gives the last hidden states
        (N, hidden) there, for :meth:`_log_probs` to apply its head to; another model gives its logits
        (N, V), computed for every column from the first one needed."""
        import torch

        kwargs = {"input_ids": ids, "attention_mask": mask}
        if cache is not None:
            kwargs.update(past_key_values=cache, use_cache=True)
        if self._takes_positions:
            kwargs["position_ids"] = positions
        if self._head is not None:
            out = getattr(self.model, self.model.base_model_prefix)(**kwargs, return_dict=True)
            picked = out.last_hidden_state[rows, columns] if rows is not None else None
        else:
            first = int(columns.min()) if rows is not None else ids.shape[1]
            if self._keeps_logits:
                kwargs["logits_to_keep"] = torch.arange(first, ids.shape[1], device=ids.device)
                out = self.model(**kwargs)
                kept = out.logits
            else:
                out = self.model(**kwargs)
                kept = out.logits[:, first:]
            picked = kept[rows, columns - first] if rows is not None else None
        return picked, out.past_key_values if cache is not None else None

    def _log_probs(self, outputs, targets):
        """(log-probability of each target (N,) fp32, whether it is the argmax (N,) bool) from ``_forward``'s
        outputs, ``HEAD_ROWS`` rows at a time: the (rows, V) logits of a large vocabulary are the largest
        tensor of the pass, and the head's product runs fastest on a few hundred rows or fewer."""
        import torch

        picked, hits = [], []
        for start in range(0, len(targets), HEAD_ROWS):
            part = outputs[start:start + HEAD_ROWS]
            logits = (self._head(part) if self._head is not None else part).float()  # (rows, V)
            wanted = targets[start:start + HEAD_ROWS]
            picked.append(torch.log_softmax(logits, dim=-1).gather(1, wanted[:, None])[:, 0])
            hits.append(logits.argmax(dim=-1) == wanted)
        return torch.cat(picked), torch.cat(hits)

    def _score_window(self, window, requests, unique, results, progress) -> None:
        """Score the sequences of ``window``, a list of (shared prefix length, [(inputs, count)]) groups.

        The shared prefixes run first, ``batch_size`` at a time, right-padded, without the head, into one
        key/value tensor per layer (G, H, P, D). The sequences' remaining tokens then run sorted by their
        length (so they pad little), ``batch_size`` rows at a time, on top of their group's cached rows,
        with a mask (B, P' + S) that shows each row its own prefix and positions that continue it.
        """
        import torch
        import torch.nn.functional as F

        from ..cache import DynamicCache

        device = getattr(self.model, "device", None)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        shared = [group for group in window if group[0] > 0]
        width = max((length for length, _ in shared), default=0)
        keys: list[list] = []
        values: list[list] = []
        for batch in _prefix_batches(shared, self.batch_size):
            steps = max(length for length, _ in batch)
            ids = torch.full((len(batch), steps), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), steps), dtype=torch.long)
            for row, (length, members) in enumerate(batch):
                ids[row, :length] = torch.tensor(members[0][0][:length])
                mask[row, :length] = 1
            positions = torch.arange(steps)[None].expand(len(batch), steps)
            _, cache = self._forward(ids.to(device), mask.to(device), positions.to(device), DynamicCache())
            for layer, (key, value) in enumerate(cache.layers()):
                if layer == len(keys):
                    keys.append([])
                    values.append([])
                keys[layer].append(F.pad(key, (0, 0, 0, width - steps)))
                values[layer].append(F.pad(value, (0, 0, 0, width - steps)))
        keys = [torch.cat(parts) for parts in keys]  # per layer (G, H, width, D)
        values = [torch.cat(parts) for parts in values]
        rows = [(slot, length, inputs, count) for slot, (length, members) in enumerate(shared)
                for inputs, count in members]
        rows += [(0, 0, inputs, count) for length, members in window if length == 0 for inputs, count in members]
        rows.sort(key=lambda row: -(len(row[2]) - row[1]))
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start:start + self.batch_size]
            past_width = max(length for _, length, _, _ in batch)
            steps = max(len(inputs) - length for _, length, inputs, _ in batch)
            ids = torch.full((len(batch), steps), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), past_width + steps), dtype=torch.long)
            positions = torch.zeros((len(batch), steps), dtype=torch.long)
            for row, (_, length, inputs, _) in enumerate(batch):
                suffix = inputs[length:]
                ids[row, :len(suffix)] = torch.tensor(suffix)
                mask[row, :length] = 1
                mask[row, past_width:past_width + len(suffix)] = 1
                positions[row, :len(suffix)] = torch.arange(length, length + len(suffix))  # pads: 0
            past = None
            if past_width:
                slots = torch.tensor([slot for slot, _, _, _ in batch], device=device)
                past = DynamicCache()
                for key, value in zip(keys, values):
                    # Rows of the contiguous tensor first (a block copy), then the narrower view: index_select on
                    # the strided view took a slow elementwise path (12% of a run on 2 threads).
                    past.keys.append(key.index_select(0, slots)[:, :, :past_width].contiguous())
                    past.values.append(value.index_select(0, slots)[:, :, :past_width].contiguous())
            # The head runs on the scored positions only: each row's last ``count`` ones.
            # Requests that share a sequence can still differ in their continuation's last token (it is not an
            # input): each distinct continuation gets its own scored rows, over the same hidden states.
            scored_rows, columns, targets, owners = [], [], [], []
            for row, (_, length, inputs, count) in enumerate(batch):
                end = len(inputs) - length
                variants: dict[tuple[int, ...], list[int]] = {}
                for index in unique[(inputs, count)]:
                    variants.setdefault(tuple(requests[index][1][-count:]), []).append(index)
                for target, indices in variants.items():
                    scored_rows += [row] * count
                    columns += range(end - count, end)
                    targets += target
                    owners.append((count, indices))
            outputs, _ = self._forward(ids.to(device), mask.to(device), positions.to(device), past,
                                       torch.tensor(scored_rows, device=device), torch.tensor(columns, device=device))
            picked, hits = self._log_probs(outputs, torch.tensor(targets, device=outputs.device))
            hits = hits.tolist()
            offset = 0
            for count, indices in owners:
                # Summed in fp32, as lm-eval sums.
                score = (float(picked[offset:offset + count].sum()), all(hits[offset:offset + count]))
                offset += count
                for index in indices:
                    results[index] = score
            if progress is not None:
                progress(sum(len(unique[(inputs, count)]) for _, _, inputs, count in batch))


def _prefix_batches(groups: list, batch_size: int):
    """Consecutive runs of ``groups`` (sorted longest prefix first) to prefill together: ``batch_size`` at
    most, and fewer where that many would pad past ``PREFIX_BATCH_TOKENS`` (long few-shot prefixes: a
    few rows of hundreds of tokens already make large products, and fewer rows pad less)."""
    batch: list = []
    for group in groups:
        if batch and (len(batch) == batch_size or (len(batch) + 1) * batch[0][0] > PREFIX_BATCH_TOKENS):
            yield batch
            batch = []
        batch.append(group)
    if batch:
        yield batch


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences."""
    length = 0
    for x, y in zip(a, b):
        if x != y:
            break
        length += 1
    return length


def shared_prefix_groups(sequences: Sequence[tuple[tuple[int, ...], int]]) -> list[tuple[int, list]]:
    """Group (inputs, count) sequences that share a leading run of tokens: [(prefix length, members)].

    Sorted by their tokens, each sequence joins the group before it when the group's common prefix,
    shortened to that sequence's, keeps at least half its length (so one shared first token, such as a
    BOS, does not merge unrelated documents into one group with a useless prefix). A prefix never reaches
    a position whose logits are scored (``len(inputs) - count``), so every member runs at least its scored
    tokens after the cache. A group of one shares nothing and has prefix length 0: it runs in one piece.
    This is the longest common prefix of the members' token sequences, so a context whose last token
    changes when the continuation is joined to it shares only the tokens before it.
    """
    groups: list[tuple[int, list]] = []
    members: list = []
    length = 0
    for sequence in sorted(sequences):
        inputs, count = sequence
        if members:
            shared = min(length, _common_prefix(members[0][0], inputs), len(inputs) - count)
            if shared >= 1 and 2 * shared >= length:
                members.append(sequence)
                length = shared
                continue
            groups.append((length if len(members) > 1 else 0, members))
        members, length = [sequence], len(inputs) - count
    if members:
        groups.append((length if len(members) > 1 else 0, members))
    return groups


def progress_bar(total: int, description: str, enabled: bool = True):
    """A tqdm bar on stderr (or None when disabled) and the callback that advances it."""
    if not enabled:
        return None, None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=description, unit="req", file=sys.stderr)
    return bar, bar.update
