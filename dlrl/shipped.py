"""The recipes and reward modules that ship with dlrl, found from any working directory.

In a source checkout they are the top-level ``recipes/`` and ``rewards/`` folders (users read and
copy them there). A wheel carries copies under ``dlrl/_shipped/`` (``setup.py`` puts them there at
build time), so ``dlrl train recipes/tiny/diffu_grpo.yaml`` and ``dlrl:math_accuracy`` also work
after ``pip install``.
"""

from __future__ import annotations

from pathlib import Path

from dlrl.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED = ("recipes", "rewards")


def shipped_dir(name: str) -> Path:
    """``recipes`` or ``rewards``: the packaged copy, else the checkout's top-level folder."""
    if name not in SHIPPED:
        raise ValueError(f"{name!r} is not shipped; valid: {', '.join(SHIPPED)}")
    packaged = PACKAGE_DIR / "_shipped" / name
    if packaged.is_dir():
        return packaged
    checkout = PACKAGE_DIR.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / name).is_dir():
        return checkout / name
    raise ConfigError(f"dlrl's shipped {name}/ folder is missing from this installation ({packaged})")


def resolve_shipped(path: str | Path, name: str) -> Path | None:
    """A relative ``path`` that names a shipped file (``recipes/tiny/x.yaml`` or ``tiny/x.yaml``
    for recipes; ``rewards/math.py`` or ``math.py`` for rewards); None when there is none."""
    p = Path(path)
    if p.is_absolute():
        return None
    try:
        root = shipped_dir(name)
    except ConfigError:
        return None
    parts = p.parts[1:] if p.parts and p.parts[0] == name else p.parts
    candidate = root.joinpath(*parts) if parts else None
    return candidate if candidate is not None and candidate.is_file() else None


def resolve_recipe_path(path: str | Path) -> Path:
    """``path`` as given when it exists, else the shipped recipe of that name (any working directory)."""
    p = Path(path)
    if p.is_file():
        return p
    found = resolve_shipped(p, "recipes")
    if found is None:
        raise ConfigError(
            f"recipe {str(path)!r} does not exist (nor among the shipped recipes: {_listing()})"
        )
    return found


def shipped_recipes() -> list[str]:
    """Shipped recipe paths as users write them (``recipes/tiny/diffu_grpo.yaml``)."""
    try:
        root = shipped_dir("recipes")
    except ConfigError:
        return []
    return sorted(
        f"recipes/{p.relative_to(root).as_posix()}"
        for p in root.rglob("*.y*ml")
        if p.suffix in (".yaml", ".yml") and "accelerate" not in p.parts
    )


def _listing() -> str:
    names = shipped_recipes()
    return ", ".join(names) if names else "none found"
