"""What the example scripts share: the command-line options and saving figures when matplotlib is there."""

from __future__ import annotations

import argparse
from pathlib import Path

import gdxp


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with ``--backend`` and ``--figures`` (the folder for PNG files)."""
    result = argparse.ArgumentParser(description=description)
    result.add_argument("--backend", choices=gdxp.backend.BACKEND_NAMES, default=None,
                        help="array library (default: $GDXP_BACKEND, else numpy)")
    result.add_argument("--figures", type=Path, default=Path("."),
                        help="folder for the PNG figures (default: the current folder)")
    return result


def save_plot(history: gdxp.History, folder: Path, name: str) -> None:
    """Save the run's figures as ``folder/name.png``, or say why not (matplotlib is optional)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        history.plot(folder / f"{name}.png")
    except ImportError as err:
        print(f"  (no figure: {err})")
    else:
        print(f"  figures saved to {folder / name}.png")
