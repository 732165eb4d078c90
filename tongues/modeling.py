"""``PreTrainedModel``: loading, saving, weight tying, initialisation and resizing for every family.

A family model subclasses :class:`PreTrainedModel`, sets ``config_class`` and
``base_model_prefix`` (the attribute holding the bare model inside head models, e.g.
``"transformer"``), names its tied weights in ``tied_weights`` (target key -> source key) and
calls ``self.post_init()`` at the end of ``__init__``.

Loading builds the model on the meta device (no memory, no random init), then puts each
checkpoint tensor in place, cast to the requested dtype one tensor at a time. Only weights the
checkpoint lacks are initialised, and they are reported.

Example::

    model = BloomForCausalLM.from_pretrained("path/to/bloom-560m", dtype=torch.bfloat16)
    model.save_pretrained("out/", max_shard_size="200MB")
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator

import torch
from torch import nn

from .checkpoint.files import CheckpointError, staged_directory
from .checkpoint.io import find_weight_files, iter_checkpoint, remove_stale_weights, write_safetensors
from .configuration import PretrainedConfig, _refuse_remote_code, check_from_pretrained_keywords

logger = logging.getLogger("tongues")

_HUB_KWARGS = ("revision", "cache_dir", "local_files_only", "token", "force_download", "subfolder")
_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "float64": torch.float64,
}


def parse_dtype(dtype: Any, where: str = "dtype") -> torch.dtype | None:
    """``torch.bfloat16`` / ``"bfloat16"`` / ``"bf16"`` -> torch dtype; ``None``/``"auto"`` -> ``None``."""
    if dtype is None or dtype == "auto":
        return None
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and dtype.replace("torch.", "") in _DTYPES:
        return _DTYPES[dtype.replace("torch.", "")]
    raise ValueError(f"{where} must be 'auto', a torch floating dtype or one of {sorted(_DTYPES)}; got {dtype!r}")


@dataclass
class LoadReport:
    """What a load found: checkpoint keys the model lacks, model keys the checkpoint lacks, and size mismatches."""

    missing_keys: list[str] = field(default_factory=list)
    unexpected_keys: list[str] = field(default_factory=list)
    mismatched_keys: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    error_msgs: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list]:
        return {"missing_keys": self.missing_keys, "unexpected_keys": self.unexpected_keys,
                "mismatched_keys": self.mismatched_keys, "error_msgs": self.error_msgs}


class PreTrainedModel(nn.Module):
    """Base class of every tongues model."""

    config_class: ClassVar[type[PretrainedConfig]] = PretrainedConfig
    base_model_prefix: ClassVar[str] = ""
    main_input_name: ClassVar[str] = "input_ids"
    # target key -> source key; the target is re-tied to the source when ``config.tie_word_embeddings``.
    tied_weights: ClassVar[dict[str, str]] = {}
    # Regexes of checkpoint keys that are expected to be absent from the model (old buffers) or
    # from the checkpoint (recomputed buffers); they are dropped from the report silently.
    ignore_unexpected: ClassVar[tuple[str, ...]] = ()
    ignore_missing: ClassVar[tuple[str, ...]] = ()
    supports_gradient_checkpointing: ClassVar[bool] = True

    def __init__(self, config: PretrainedConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        if not isinstance(config, PretrainedConfig):
            raise TypeError(
                f"{type(self).__name__} expects a {self.config_class.__name__} as config; got {type(config).__name__}. "
                f"Use {type(self).__name__}.from_pretrained(path) to load a checkpoint."
            )
        self.config = config
        self.name_or_path = getattr(config, "_name_or_path", "")
        self._generation_config = None
        self.gradient_checkpointing = False

    # -- generation config (lazy, so generation imports only when needed) ---------------------
    @property
    def generation_config(self):
        if self._generation_config is None and self.can_generate():
            from .generation import GenerationConfig

            self._generation_config = GenerationConfig.from_model_config(self.config)
        return self._generation_config

    @generation_config.setter
    def generation_config(self, value) -> None:
        self._generation_config = value

    @classmethod
    def can_generate(cls) -> bool:
        return any(getattr(base, "_is_generation_mixin", False) for base in cls.__mro__)

    # -- properties ----------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        for p in self.parameters():
            if p.is_floating_point():
                return p.dtype
        return torch.float32

    @property
    def base_model(self) -> nn.Module:
        return getattr(self, self.base_model_prefix, self)

    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        """Parameter count; tied weights count once."""
        seen, total = set(), 0
        embedding_ids = {id(m.weight) for m in self.modules() if isinstance(m, nn.Embedding)} if exclude_embeddings else set()
        for p in self.parameters():
            if id(p) in seen or (only_trainable and not p.requires_grad) or id(p) in embedding_ids:
                continue
            seen.add(id(p))
            total += p.numel()
        return total

    # -- decode path ---------------------------------------------------------------------------
    def prepare_for_decode(self, kernels: str = "auto") -> "PreTrainedModel":
        """Choose, once, the module that runs each CPU linear layer; returns ``self``.

        ``from_pretrained`` calls it with its ``kernels=`` keyword; call it yourself on a model built
        from a config. ``"auto"``: the kernels measured fastest for each weight dtype
        (:mod:`tongues.fast.select`); ``"packed"``: the same, with bf16 weights packed for oneDNN
        (inference only; :mod:`tongues.fast.packed`); ``"none"``: torch's ``F.linear``. Parameters are shared (tying,
        ``state_dict`` and saving are unchanged); quantised layers keep their kernels. ``generate``
        never changes the choice. :attr:`decode_kernels` shows it.
        """
        from .fast import prepare_for_decode

        return prepare_for_decode(self, kernels)

    @property
    def decode_kernels(self) -> dict[str, str]:
        """Module name -> the kernel that runs it, for every linear layer."""
        from .fast import linear_kernels

        return linear_kernels(self)

    def _can_decode_into_slot_cache(self) -> bool:
        """``generate``'s hook: every attention layer writes its keys/values through ``Cache.update``, so
        greedy search and sampling may decode into a :class:`~tongues.slot_cache.SlotCache`. Decoders with
        cross-attention keep the cache they build themselves."""
        return not getattr(self.config, "add_cross_attention", False)

    # -- embeddings ----------------------------------------------------------------------------
    def get_input_embeddings(self) -> nn.Module:
        base = self.base_model
        if base is not self:
            return base.get_input_embeddings()
        raise NotImplementedError(f"{type(self).__name__} does not define get_input_embeddings")

    def set_input_embeddings(self, value: nn.Module) -> None:
        base = self.base_model
        if base is not self:
            return base.set_input_embeddings(value)
        raise NotImplementedError(f"{type(self).__name__} does not define set_input_embeddings")

    def get_output_embeddings(self) -> nn.Module | None:
        return getattr(self, "lm_head", None)

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.lm_head = value

    def tie_weights(self) -> None:
        """Point every tied target at its source parameter (when ``config.tie_word_embeddings``)."""
        if not getattr(self.config, "tie_word_embeddings", True):
            return
        for target, source in self.tied_weights.items():
            src_module, src_name = self._locate(source)
            dst_module, dst_name = self._locate(target)
            if src_module is None or dst_module is None:
                continue
            setattr(dst_module, dst_name, getattr(src_module, src_name))

    def _locate(self, key: str) -> tuple[nn.Module | None, str]:
        module_path, _, name = key.rpartition(".")
        try:
            return self.get_submodule(module_path) if module_path else self, name
        except AttributeError:
            return None, name

    def resize_token_embeddings(self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None,
                                mean_resizing: bool = True) -> nn.Embedding:
        """Grow or shrink the vocabulary of the input (and tied output) embeddings.

        New rows are set to the mean of the old rows when ``mean_resizing`` (the distribution the
        reference samples from, without its vanishing noise), else drawn from the init. Updates
        ``config.vocab_size``. Returns the new input embedding.
        """
        old = self.get_input_embeddings()
        if new_num_tokens is None and pad_to_multiple_of is None:
            return old
        new_num_tokens = old.weight.shape[0] if new_num_tokens is None else new_num_tokens
        if pad_to_multiple_of is not None:
            if not isinstance(pad_to_multiple_of, int) or pad_to_multiple_of <= 0:
                raise ValueError(f"pad_to_multiple_of must be a positive integer; got {pad_to_multiple_of!r}")
            new_num_tokens = -(-new_num_tokens // pad_to_multiple_of) * pad_to_multiple_of
        if not isinstance(new_num_tokens, int) or new_num_tokens <= 0:
            raise ValueError(f"new_num_tokens must be a positive integer; got {new_num_tokens!r}")
        new = self._resized_rows(old, new_num_tokens, mean_resizing)
        self.set_input_embeddings(new)
        output = self.get_output_embeddings()
        if output is not None:
            if getattr(self.config, "tie_word_embeddings", True) and self.tied_weights:
                self.tie_weights()
            else:
                self.set_output_embeddings(self._resized_rows(output, new_num_tokens, mean_resizing))
        self.config.vocab_size = new_num_tokens
        if hasattr(self, "vocab_size"):
            self.vocab_size = new_num_tokens
        return self.get_input_embeddings()

    def _resized_rows(self, module: nn.Module, rows: int, mean_resizing: bool) -> nn.Module:
        weight = module.weight
        old_rows = weight.shape[0]
        if isinstance(module, nn.Embedding):
            new = nn.Embedding(rows, weight.shape[1], padding_idx=module.padding_idx, device=weight.device, dtype=weight.dtype)
        else:
            new = nn.Linear(weight.shape[1], rows, bias=module.bias is not None, device=weight.device, dtype=weight.dtype)
        self._init_module(new)
        n = min(rows, old_rows)
        with torch.no_grad():
            new.weight[:n] = weight[:n]
            if rows > old_rows and mean_resizing:
                new.weight[old_rows:] = weight.float().mean(0).to(weight.dtype)
            if getattr(module, "bias", None) is not None:
                new.bias[:n] = module.bias[:n]
                if rows > old_rows:
                    new.bias[old_rows:] = 0
        return new

    # -- initialisation ------------------------------------------------------------------------
    def post_init(self) -> None:
        """Initialise weights (skipped on the meta device) and tie them. Call at the end of ``__init__``."""
        if not any(p.is_meta for p in self.parameters()):
            self.apply(self._init_module)
        self.tie_weights()

    def _init_std(self) -> float:
        for name in ("initializer_range", "init_std"):
            value = getattr(self.config, name, None)
            if value is not None:
                return value
        return 0.02

    @torch.no_grad()
    def _init_module(self, module: nn.Module) -> None:
        """Default init: normal(0, initializer_range) for linear and embedding weights, zero biases, unit norms."""
        std = self._init_std()
        if isinstance(module, nn.Linear):
            module.weight.normal_(0.0, std)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.normal_(0.0, std)
            if module.padding_idx is not None:
                module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm) or "RMSNorm" in type(module).__name__:
            if getattr(module, "weight", None) is not None:
                module.weight.fill_(1.0)
            if getattr(module, "bias", None) is not None:
                module.bias.zero_()

    # -- gradient checkpointing ----------------------------------------------------------------
    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None) -> None:
        if not self.supports_gradient_checkpointing:
            raise ValueError(f"{type(self).__name__} does not support gradient checkpointing")
        for module in self.modules():
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = True

    def gradient_checkpointing_disable(self) -> None:
        for module in self.modules():
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = False

    @property
    def is_gradient_checkpointing(self) -> bool:
        return any(getattr(m, "gradient_checkpointing", False) for m in self.modules())

    # -- saving --------------------------------------------------------------------------------
    def state_dict_to_save(self, state: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """The state dict (or ``state``, e.g. gathered from FSDP ranks) without tied copies (a tied
        target shares its source's storage)."""
        state = self.state_dict() if state is None else dict(state)
        if getattr(self.config, "tie_word_embeddings", True):
            for target in self.tied_weights:
                state.pop(target, None)
        return state

    def save_pretrained(self, save_directory: str | os.PathLike, max_shard_size: int | str = "50GB",
                        safe_serialization: bool = True, state_dict: dict[str, torch.Tensor] | None = None,
                        **kwargs: Any) -> None:
        """Write ``config.json``, ``generation_config.json`` and safetensors weights (sharded above
        ``max_shard_size``, with an index) into ``save_directory``.

        Everything is staged in a hidden folder and moved in only when all files are written, so a
        failure leaves an earlier checkpoint there intact. Weight files of an earlier save that this
        save does not write are removed.
        """
        if not safe_serialization:
            raise ValueError("tongues writes safetensors only (safe_serialization=False is not supported)")
        if getattr(self, "tp_world_size", 1) > 1:
            raise ValueError(
                "This model is sharded over tensor-parallel ranks (tp_plan); each rank holds part of every "
                "weight, so save_pretrained would write a broken checkpoint. Load it without tp_plan to save."
            )
        state = self.state_dict_to_save() if state_dict is None else state_dict
        self.config.architectures = [type(self).__name__]
        self.config.dtype = str(self.dtype).replace("torch.", "")
        with staged_directory(save_directory) as staging:
            written = write_safetensors(state, staging, max_shard_size)
            self.config.save_pretrained(staging)
            if self.can_generate() and self.generation_config is not None:
                self.generation_config.save_pretrained(staging)
        remove_stale_weights(os.fspath(save_directory), written)

    # -- loading -------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: PretrainedConfig, dtype: Any = None, **kwargs: Any) -> "PreTrainedModel":
        """A randomly initialised model of ``config``."""
        torch_dtype = parse_dtype(dtype if dtype is not None else kwargs.pop("torch_dtype", None))
        with _default_dtype(torch_dtype):
            return cls(config)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *model_args: Any,
                        config: PretrainedConfig | str | None = None, dtype: Any = "auto", torch_dtype: Any = None,
                        output_loading_info: bool = False, ignore_mismatched_sizes: bool = False,
                        trust_remote_code: bool = False, quantization: str | None = None,
                        kernels: str = "auto", device: str | torch.device | None = None,
                        tp_plan: str | None = None, device_mesh=None, **kwargs: Any):
        """Load a checkpoint directory or hub id.

        Args:
            pretrained_model_name_or_path: local directory, or hub id resolved through huggingface_hub.
            config: a config object or path overriding the checkpoint's ``config.json``.
            dtype / torch_dtype: ``"auto"`` (the config's dtype, else the weights' own), or a torch dtype.
            revision, cache_dir, local_files_only, token: passed to huggingface_hub.
            output_loading_info: also return the key report (missing / unexpected / mismatched).
            ignore_mismatched_sizes: initialise mismatched weights instead of raising.
            quantization: ``None``, ``"int8"`` or ``"int4"`` weight-only quantisation of linear layers,
                done while reading the checkpoint (peak memory: the quantised model plus about one tensor).
            kernels: ``"auto"`` (default) runs each CPU linear layer on the kernel measured fastest for
                its weights; ``"packed"`` also packs bf16 weights into oneDNN's layout where the CPU
                multiplies bf16 natively (inference only, faster); ``"none"`` keeps torch's ``F.linear``.
                See :meth:`prepare_for_decode`.
            device: where to put the weights (default CPU).
            tp_plan: ``"auto"`` shards the model Megatron-style over the ``torch.distributed`` world
                (under ``torchrun``), each rank loading only its part (tongues.distributed).
            device_mesh: a 1-D ``torch.distributed.device_mesh.DeviceMesh`` to shard over instead.
            Remaining keywords override config values.

        Raises:
            CheckpointError: missing or malformed files; a weight whose shape differs from the model's
                (the message names the key and both shapes).
        """
        if trust_remote_code:
            _refuse_remote_code()
        path = os.fspath(pretrained_model_name_or_path)
        hub_kwargs = {k: kwargs.pop(k) for k in _HUB_KWARGS if k in kwargs}
        hub_kwargs = {k: v for k, v in hub_kwargs.items() if v is not None}
        for ignored in ("device_map", "low_cpu_mem_usage", "use_safetensors", "attn_implementation"):
            kwargs.pop(ignored, None)
        # Keywords the config class does not declare must be keys of the checkpoint's config (checked below).
        undeclared = {k: kwargs.pop(k) for k in list(kwargs) if k not in cls.config_class.known_keys()}
        if config is None:
            config = cls.config_class.from_pretrained(path, **hub_kwargs, **kwargs)
        elif isinstance(config, (str, os.PathLike)):
            config = cls.config_class.from_pretrained(config, **kwargs)
        elif kwargs:
            for key, value in kwargs.items():
                setattr(config, key, value)
        check_from_pretrained_keywords(f"{cls.__name__}.from_pretrained", undeclared, config)
        for key, value in undeclared.items():
            setattr(config, key, value)
        if not isinstance(config, cls.config_class):
            raise CheckpointError(
                f"{path}: {cls.__name__} needs a {cls.config_class.__name__}; got {type(config).__name__}"
            )
        from .fast import selector

        select = selector(kernels)  # a bad value fails here, before any file is read
        if quantization is not None:
            from .quantization import check_method

            check_method(quantization)
            if device is not None and torch.device(device).type != "cpu":
                raise ValueError(f"quantization={quantization!r} runs on CPU; got device={device!r}. "
                                 "Load without quantization to use another device.")
        files, fmt = find_weight_files(path, **hub_kwargs)
        requested = torch_dtype if torch_dtype is not None and dtype == "auto" else dtype
        target_dtype = parse_dtype(requested) or parse_dtype(getattr(config, "dtype", None), "config.dtype")

        with torch.device("meta"), _skip_module_init():
            model = cls(config, *model_args)
        if tp_plan is not None or device_mesh is not None:
            from .distributed.loading import shard_for_loading

            shard_for_loading(model, tp_plan, device_mesh, quantization)
        report = model._load_checkpoint(files, fmt, target_dtype, ignore_mismatched_sizes, device,
                                        quantization, select)
        model.name_or_path = path
        model.eval()
        model.prepare_for_decode(kernels)
        from .generation.configuration import GenerationConfig

        if model.can_generate():
            try:
                model.generation_config = GenerationConfig.from_pretrained(path, **hub_kwargs)
            except (FileNotFoundError, OSError, CheckpointError):
                model.generation_config = GenerationConfig.from_model_config(config)
        if output_loading_info:
            return model, report.as_dict()
        return model

    def convert_checkpoint_key(self, key: str) -> str | None:
        """Hook: rename a checkpoint key from a foreign layout (``None`` drops it). Default: unchanged."""
        return key

    def convert_checkpoint_tensor(self, key: str, tensor: torch.Tensor) -> Iterator[tuple[str, torch.Tensor]]:
        """Hook: the ``(key, tensor)`` pairs one checkpoint tensor becomes (none drops it; several split a
        fused weight). Default: the tensor itself, under :meth:`convert_checkpoint_key`'s name."""
        new_key = self.convert_checkpoint_key(key)
        if new_key is not None:
            yield new_key, tensor

    def _load_checkpoint(self, files: list[str], fmt: str, target_dtype: torch.dtype | None,
                         ignore_mismatched_sizes: bool, device, quantization: str | None = None,
                         select=None) -> LoadReport:
        expected = dict(self.state_dict(keep_vars=True))
        prefix = self.base_model_prefix
        has_prefix_in_model = bool(prefix) and any(k.startswith(prefix + ".") for k in expected)
        tied_targets = set(self.tied_weights) if getattr(self.config, "tie_word_embeddings", True) else set()
        report = LoadReport()
        loaded: set[str] = set()
        quantizer = None
        if quantization is not None:
            from .quantization import QuantizeWhileLoading

            quantizer = QuantizeWhileLoading(self, quantization, select, skip=tied_targets)
        shards = getattr(self, "tp_shards", None)
        # Checkpoint keys whose tensors were quantised, or (tensor parallel) cut to this rank's part:
        # the reader drops their file pages from the process.
        release: set[str] = set()
        tensors = iter_checkpoint(files, fmt, target_dtype, release if quantizer is not None or shards else None)
        converted = ((raw_key, key, tensor) for raw_key, raw in tensors
                     for key, tensor in self.convert_checkpoint_tensor(raw_key, raw))
        for raw_key, key, tensor in converted:
            key = self._match_prefix(key, expected, prefix, has_prefix_in_model)
            if quantizer is not None and quantizer.owns(key):
                loaded.add(key)
                continue
            if key not in expected:
                if not any(re.search(p, key) for p in self.ignore_unexpected):
                    report.unexpected_keys.append(raw_key)
                continue
            slot = expected[key]
            if shards:  # tensor parallel: keep this rank's part only
                from .distributed.tensor_parallel import shard_tensor

                if key in shards:
                    tensor = shard_tensor(shards, key, tensor)
                    release.add(raw_key)  # a copy of the part: the whole tensor's pages can go
            if tuple(tensor.shape) != tuple(slot.shape):
                if ignore_mismatched_sizes:
                    report.mismatched_keys.append((key, tuple(tensor.shape), tuple(slot.shape)))
                    continue
                raise CheckpointError(
                    f"{files[0] if len(files) == 1 else 'the checkpoint'}: weight {raw_key!r} has shape "
                    f"{tuple(tensor.shape)} but the model expects {tuple(slot.shape)} for {key!r}. "
                    "Check that config.json matches the weights, or pass ignore_mismatched_sizes=True."
                )
            dtype = slot.dtype
            if tensor.is_floating_point():
                dtype = target_dtype or tensor.dtype
            self._put(key, tensor.to(device=device or "cpu", dtype=dtype), slot)
            loaded.add(key)
            if quantizer is not None and quantizer.loaded(key):
                release.add(raw_key)
        missing = [k for k in expected if k not in loaded and k not in tied_targets]
        self._materialise_missing(missing, target_dtype, device)
        self.tie_weights()
        if quantizer is not None:
            quantizer.finish()
        report.missing_keys = [k for k in missing if not any(re.search(p, k) for p in self.ignore_missing)
                               and not self._is_nonpersistent(k)]
        if report.missing_keys:
            logger.warning("Weights not in the checkpoint, newly initialised: %s", ", ".join(report.missing_keys))
        if report.unexpected_keys:
            logger.info("Checkpoint weights not used by %s: %s", type(self).__name__, ", ".join(report.unexpected_keys))
        return report

    @staticmethod
    def _match_prefix(key: str, expected: dict, prefix: str, has_prefix_in_model: bool) -> str:
        """Add or strip the base-model prefix so head models load bare checkpoints and vice versa."""
        if key in expected or not prefix:
            return key
        if has_prefix_in_model and f"{prefix}.{key}" in expected:
            return f"{prefix}.{key}"
        if not has_prefix_in_model and key.startswith(prefix + "."):
            return key[len(prefix) + 1:]
        return key

    def _is_nonpersistent(self, key: str) -> bool:
        module, name = self._locate(key)
        return module is not None and name in getattr(module, "_non_persistent_buffers_set", set())

    def _put(self, key: str, tensor: torch.Tensor, slot: torch.Tensor) -> None:
        module, name = self._locate(key)
        if name in module._parameters:
            module._parameters[name] = nn.Parameter(tensor, requires_grad=slot.requires_grad)
        else:
            module._buffers[name] = tensor

    def _materialise_missing(self, missing: list[str], target_dtype, device) -> None:
        """Allocate and initialise the weights the checkpoint lacks (meta tensors become real)."""
        dtype = target_dtype or torch.float32
        by_module: dict[int, tuple[nn.Module, list[str]]] = {}
        for key in missing:
            module, name = self._locate(key)
            by_module.setdefault(id(module), (module, []))[1].append(name)
        std = self._init_std()
        for module, names in by_module.values():
            for name in names:
                old = module._parameters.get(name)
                store = module._parameters if old is not None else module._buffers
                old = old if old is not None else module._buffers[name]
                fresh = torch.empty(old.shape, dtype=dtype if old.is_floating_point() else old.dtype, device=device or "cpu")
                store[name] = nn.Parameter(fresh, requires_grad=old.requires_grad) if store is module._parameters else fresh
            present = [n for n, p in module.named_parameters(recurse=False) if n not in names]
            if not present:
                self._init_module(module)
            else:  # only part of the module is missing: biases start at zero, weights from the init
                with torch.no_grad():
                    for name in names:
                        t = getattr(module, name)
                        t.zero_() if name == "bias" else t.normal_(0.0, std)
            self._init_buffers(module)
        # Buffers computed at construction (tables, masks) are never in checkpoints: rebuild them.
        # Only the meta buffers are replaced: the module's loaded parameters stay as they are.
        for module in self.modules():
            meta = [name for name, b in module._buffers.items() if b is not None and b.is_meta]
            for name in meta:
                module._buffers[name] = torch.empty_like(module._buffers[name], device=device or "cpu")
            if meta:
                self._init_buffers(module)

    def _init_buffers(self, module: nn.Module) -> None:
        """Recompute a module's non-checkpoint buffers after materialisation (modules define ``reset_buffers``)."""
        reset = getattr(module, "reset_buffers", None)
        if callable(reset):
            reset()


@contextlib.contextmanager
def _skip_module_init() -> Iterator[None]:
    """Make ``torch.nn.init``'s fill functions no-ops while modules are built on the meta device.

    # Their random init is wasted there, and torch's meta path for ``normal_`` imports
    # torch._dynamo: 1.5-3 s of the first load in a process (measured, benchmarks/run.py).
    """
    names = ("uniform_", "normal_", "trunc_normal_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_",
             "xavier_normal_", "constant_", "zeros_", "ones_", "orthogonal_")
    saved = {name: getattr(nn.init, name) for name in names if hasattr(nn.init, name)}
    for name in saved:
        setattr(nn.init, name, lambda tensor, *args, **kwargs: tensor)
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(nn.init, name, fn)


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype | None) -> Iterator[None]:
    if dtype is None:
        yield
        return
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)

