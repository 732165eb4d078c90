"""Files shipped inside the package: the embedded demonstration model (``default-model/``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEFAULT_MODEL_DIR = "default-model"
DEFAULT_MODEL_NOTICE = (
    "using tongues' embedded demonstration model (a 1.3M-parameter BLOOM trained for 44 minutes on a CPU, in "
    "ten European languages; expect broken text, see docs/default-model.md); pass --model DIR for a real "
    "checkpoint"
)


def default_model_path() -> Path:
    """The folder of the embedded demonstration model (a BLOOM checkpoint with its tokenizer).

    Raises:
        FileNotFoundError: the package was installed without its assets.
    """
    path = Path(str(resources.files(__name__).joinpath(DEFAULT_MODEL_DIR)))
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"the embedded default model is missing from {path} (a broken installation?); "
                                f"rebuild it with scripts/train_default_model.py or pass --model")
    return path
