"""The model card: a JSON file beside every artifact (``model.onnx`` -> ``model.card.json``) saying what
the artifact takes and gives, where it came from, and how well it matches its torch twin.
Torch-free, so the device side and the report can read it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ModelCard:
    """What travels with an artifact.

    ``input_range`` is the value range every backend and attack uses (normalization is inside the graph).
    ``parity`` holds the comparison with the torch twin (max |Δlogit|, top-1 agreement, samples, tolerance).
    """

    name: str
    format: str
    input_shape: tuple[int, ...]
    num_classes: int
    classes: tuple[str, ...]
    input_range: tuple[float, float] = (0.0, 1.0)
    sha256: str = ""
    size_bytes: int = 0
    deflate_bytes: int = 0
    provenance: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)

    def save(self, artifact: Path) -> Path:
        path = card_path(artifact)
        path.write_text(json.dumps(asdict(self), indent=1))
        return path

    @classmethod
    def load(cls, artifact: Path) -> ModelCard:
        raw = json.loads(card_path(artifact).read_text())
        raw["input_shape"] = tuple(raw["input_shape"])
        raw["classes"] = tuple(raw["classes"])
        raw["input_range"] = tuple(raw["input_range"])
        return cls(**raw)


def card_path(artifact: Path) -> Path:
    return Path(artifact).with_suffix(".card.json")


def artifact_files(path: Path) -> list[Path]:
    """The files an artifact consists of: ``[model.xml, model.bin]`` for an OpenVINO IR, ``[path]`` otherwise."""
    path = Path(path)
    if path.suffix.lower() == ".xml":
        return [path, path.with_suffix(".bin")]
    return [path]


def artifact_size(path: Path) -> int:
    """Bytes on disk of all of an artifact's files (the IR's ``.xml`` plus its ``.bin``)."""
    files = artifact_files(path)
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        from edgebench.errors import ArtifactError

        raise ArtifactError(f"{path}: artifact file(s) {missing} not found; re-run the export stage")
    return sum(p.stat().st_size for p in files)
