"""The run report: markdown with tables and PNG plots, written beside summary.json."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass
class Report:
    title: str
    root: Path
    blocks: list[str] = field(default_factory=list)

    def section(self, title: str, text: str = "") -> None:
        self.blocks.append(f"## {title}\n\n{text}".rstrip() + "\n")

    def text(self, text: str) -> None:
        self.blocks.append(text.rstrip() + "\n")

    def table(self, frame: pd.DataFrame, caption: str = "", float_format: str = ".4g") -> None:
        body = frame.to_markdown(floatfmt=float_format)  # pandas needs tabulate, a dependency
        self.blocks.append((f"*{caption}*\n\n" if caption else "") + body + "\n")

    def figure(self, path: str | os.PathLike[str], caption: str) -> None:
        rel = os.path.relpath(Path(path), self.root)
        self.blocks.append(f"![{caption}]({rel})\n\n*{caption}*\n")

    def render(self) -> str:
        return f"# {self.title}\n\n" + "\n".join(self.blocks)

