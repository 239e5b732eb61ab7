"""What the example scripts share: the command-line options, saving figures (when matplotlib is there) and
tables into the one folder ``--figures`` names, and, for the timing scripts, which backends and devices can run
here."""

from __future__ import annotations

import argparse
import csv
import importlib
import os
from dataclasses import dataclass
from pathlib import Path

import gdxp

# JAX would take 75% of a GPU's memory at its first device query, leaving CuPy and torch in the same script
# none; unless the user chose otherwise, it allocates what it uses
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

_DLPACK_CPU = 1  # kDLCPU: DLPack's device type for host memory


FIGURES = Path("figures")  # relative to where a script runs; .gitignore covers it in a checkout


def parser(description: str, *, backend: bool = True) -> argparse.ArgumentParser:
    """An argument parser that shows each option's default in ``--help``, with ``--figures`` (the one
    folder a script writes into) and, unless ``backend`` is False, ``--backend``."""
    result = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    if backend:
        result.add_argument("--backend", choices=gdxp.backend.BACKEND_NAMES, default=None,
                            help="array library (None: $GDXP_BACKEND, else numpy)")
    result.add_argument("--figures", type=Path, default=FIGURES,
                        help="the folder for what the script writes (PNG figures, CSV tables), made if missing; "
                             "it writes nowhere else")
    return result


def write_csv(rows: list[dict], path: Path) -> None:
    """The rows as a CSV table at ``path`` (its folder made if missing), and a line saying where."""
    if not rows:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"table written to {path}")


def save_plot(history: gdxp.History, folder: Path, name: str) -> None:
    """Save the run's figures as ``folder/name.png``, or say why not (matplotlib is optional)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        history.plot(folder / f"{name}.png")
    except ImportError as err:
        print(f"  (no figure: {err})")
    else:
        print(f"  figures saved to {folder / name}.png")


@dataclass(frozen=True)
class Contender:
    """One backend on one of its devices, as the timing scripts run it."""

    backend: str
    device: str  # in the backend's own terms: "cpu", "cuda:0", "cpu:0", "CPU_DEVICE"
    on_host: bool  # its arrays live in host memory: a CPU, where GPU-sized work is not worth timing

    def __str__(self) -> str:
        return f"{self.backend} {self.device}"


def contenders(statuses: dict[str, gdxp.BackendStatus], *, dask: bool = False) -> list[Contender]:
    """Every usable backend on its first CPU device and on its first accelerator, in the order of
    ``statuses`` (numpy first); Dask (NumPy chunks on local threads) only with ``dask``. Whether a device
    is a CPU is asked of DLPack, not guessed from its name: array_api_strict's simulated ``device1`` is a
    CPU too, so only its ``CPU_DEVICE`` is kept."""
    result = []
    for status in statuses.values():
        if status.name == "dask":  # a step is a scheduled graph, timed by the scripts that ask for it
            if dask and status.usable:
                result.append(Contender("dask", "cpu", on_host=True))
            continue
        kinds_seen = set()
        for label in status.devices if status.usable else ():
            device = label.split(" ")[0]  # "cuda:0 (NVIDIA H100 80GB HBM3)" -> "cuda:0"
            try:
                probe = gdxp.get_backend(status.name, device=device, dtype="float32").zeros((1,))
            except ValueError:  # a simulated device without float32, say: nothing to time there
                continue
            on_host = int(probe.__dlpack_device__()[0]) == _DLPACK_CPU
            if on_host not in kinds_seen:
                kinds_seen.add(on_host)
                result.append(Contender(status.name, device, on_host))
    return result


def enable_jax_float64() -> str | None:
    """Switch JAX's 64-bit mode on, if JAX is installed, so that these scripts can time and compare it in
    float64 like every other library; a line saying so, or None without JAX.

    This is the script's own choice, made before any JAX array exists: gdxp never flips that global
    switch for a user (a JAX backend asked for float64 without it says how to switch it on).
    """
    try:
        jax = importlib.import_module("jax")
    except ImportError:
        return None  # gdxp.available_backends() says why JAX cannot run
    jax.config.update("jax_enable_x64", True)
    return "JAX's 64-bit mode is switched on by this script (gdxp never does that for you), for its float64 rows"
