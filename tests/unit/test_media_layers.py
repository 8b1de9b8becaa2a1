"""The media package has no cycle: the rooms and the broadcast chain know each other
only through the protocols each declares, and both depend on the connection."""

from __future__ import annotations

import ast
from pathlib import Path

import summitry.media

MEDIA = Path(summitry.media.__file__).parent


def imported_by(module: str) -> set[str]:
    """Every summitry module `media/<module>.py` imports, TYPE_CHECKING blocks too."""
    tree = ast.parse((MEDIA / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("summitry.")}


def test_the_rooms_and_the_broadcast_chain_do_not_import_each_other() -> None:
    assert "summitry.media.broadcast" not in imported_by("rooms")
    assert "summitry.media.rooms" not in imported_by("broadcast")
    assert {"summitry.media.connection"} <= imported_by("rooms") & imported_by("broadcast")


def test_only_the_plane_wires_them() -> None:
    wiring = {
        path.stem
        for path in MEDIA.glob("*.py")
        if {"summitry.media.rooms", "summitry.media.broadcast"} & imported_by(path.stem)
    }
    assert wiring == {"plane"}


def test_the_lower_modules_import_neither() -> None:
    for module in ("connection", "state_file", "packager", "resources", "janus"):
        assert not {"summitry.media.rooms", "summitry.media.broadcast"} & imported_by(module)
