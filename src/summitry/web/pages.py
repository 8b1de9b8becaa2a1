"""The pages: plain HTML and ES modules from static/, no build step."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).with_name("static")

router = APIRouter(include_in_schema=False)
static_files = StaticFiles(directory=STATIC, check_dir=False)


def page(name: str) -> FileResponse:
    return FileResponse(
        STATIC / name, media_type="text/html", headers={"Cache-Control": "no-cache"}
    )


@router.get("/room/{summit_id}")
async def room(summit_id: str) -> FileResponse:
    """The call, the lobby and (for coordinators) the console; the grant is in the
    fragment of the invitation link, which never reaches the server in a URL."""
    return page("room.html")


@router.get("/s/{slug}")
async def public_page(slug: str) -> FileResponse:
    """The public page of a summit: no account, only what the public may see."""
    return page("public.html")
