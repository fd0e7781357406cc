"""What a saved model directory is, declared by whoever makes it (an objective, a fine-tuning task) and recorded
in `run_info.json` under `artifact`, so a model card never guesses how to load a model.

Example:
    >>> Artifact("AutoModelForMaskedLM", "fill-mask", "a masked-language-model encoder").to_dict()["pipeline_tag"]
    'fill-mask'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Artifact:
    """Facts about a saved model directory.

    Attributes:
        auto_class: the `transformers` Auto class that loads it with its trained head (`AutoModelForMaskedLM`,
            `AutoModelForSequenceClassification`, `AutoModel` for a bare encoder, ...).
        pipeline_tag: the Hub pipeline tag that matches that head (`fill-mask`, `text-classification`,
            `question-answering`, `feature-extraction`), or None when no pipeline fits.
        description: one line saying what the model is, for its card.
    """

    auto_class: str
    pipeline_tag: str | None
    description: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Artifact | None":
        """The facts recorded in a run_info.json (None when the run predates them or they are malformed)."""
        if not isinstance(data, dict) or not isinstance(data.get("auto_class"), str):
            return None
        return cls(data["auto_class"], data.get("pipeline_tag"), str(data.get("description", "")))
