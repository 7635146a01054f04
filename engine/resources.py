"""Where the files shipped with the tool live: shared template partials, the report
templates and the shipped playbooks.

In an installed package (a wheel, ``pipx install``) they are package data,
``engine.shipped_templates`` and ``engine.shipped_playbooks``, mapped from the
top-level ``templates/`` and ``playbooks/`` folders when the wheel is built (see
``pyproject.toml``). In a source checkout (``pip install -e .``) those two folders
are used where they stand, so editing a shipped playbook needs no reinstall.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["shipped_folder", "shipped_playbooks", "shipped_playbook"]

_CHECKOUT = Path(__file__).resolve().parent.parent


def shipped_folder(kind: str) -> Path:
    """The folder of shipped ``templates`` or ``playbooks``."""
    if kind not in ("templates", "playbooks"):
        raise ValueError(f"no shipped folder {kind!r}")
    spec = importlib.util.find_spec(f"engine.shipped_{kind}")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return _CHECKOUT / kind


def shipped_playbooks() -> dict[str, Path]:
    """Shipped playbooks by name (the file name without ``.yaml``), sorted."""
    folder = shipped_folder("playbooks")
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def shipped_playbook(name: str) -> Path | None:
    """One shipped playbook by name (``viral-complaint`` or ``viral-complaint.yaml``)."""
    stem = name[:-5] if name.endswith(".yaml") else name
    return shipped_playbooks().get(stem)


SCHEMA_COMMENT = "# yaml-language-server: $schema="
SCHEMA_FILE = "playbook.schema.json"


def shipped_summaries() -> list[dict]:
    """One entry per shipped playbook: name, id, title, version and what it is for."""
    from .format.loader import load_playbook

    out = []
    for name, path in shipped_playbooks().items():
        pb = load_playbook(path).playbook
        out.append({"name": name, "id": pb.id, "title": pb.name, "version": str(pb.version),
                    "description": " ".join(pb.description.split())})
    return out


def copy_shipped(name: str, dest: Path | None, *, force: bool = False) -> list[Path]:
    """Copy a shipped playbook to ``dest`` (a file, a folder, or ``./NAME.yaml``) for the
    user to adapt, with the format's JSON Schema beside it for editor completion.

    Refuses to overwrite an existing playbook unless ``force``; writes nothing when it
    refuses. Returns the files written.
    """
    import json

    from .errors import NotFound, StoreError, UsageError
    from .format.playbook import json_schema

    source = shipped_playbook(name)
    if source is None:
        raise NotFound(f"no shipped playbook {name!r} (shipped: {', '.join(shipped_playbooks())})")
    target = Path(dest) if dest is not None else Path(source.name)
    if target.is_dir():
        target = target / source.name
    if target.suffix not in (".yaml", ".yml"):
        raise UsageError(f"{target}: a playbook file name ends in .yaml")
    if target.exists() and not force:
        raise UsageError(f"{target} already exists; choose another name or add --force to overwrite it")
    if not target.parent.is_dir():
        raise NotFound(f"{target.parent}: no such folder")
    text = source.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    written = []
    schema = target.parent / SCHEMA_FILE
    if lines and lines[0].startswith(SCHEMA_COMMENT):
        lines[0] = f"{SCHEMA_COMMENT}{SCHEMA_FILE}\n"
    try:
        target.write_text("".join(lines), encoding="utf-8")
        written.append(target)
        if not schema.exists():
            schema.write_text(json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n",
                              encoding="utf-8")
            written.append(schema)
    except OSError as e:
        for path in written:  # all or nothing
            path.unlink(missing_ok=True)
        raise StoreError(f"{target}: cannot write ({e.strerror})") from None
    return written
