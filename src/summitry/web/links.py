"""The addresses of summitry on the web: the one place that knows how its links look."""

from __future__ import annotations


class WebLinks:
    def __init__(self, public_url: str) -> None:
        self._public_url = public_url

    def invitation(self, summit_id: str, token: str) -> str:
        # The grant goes after '#': browsers never send the fragment to any server.
        return f"{self._public_url}/room/{summit_id}#{token}"

    def public_page(self, slug: str) -> str:
        return f"{self._public_url}/s/{slug}"

    def whep(self, slug: str) -> str:
        return f"/api/v1/public/{slug}/whep"

    def live_playlist(self, slug: str, position: int) -> str:
        return f"/s/{slug}/live/{position}/index.m3u8"

    def recording(self, slug: str, position: int, kind: str) -> str:
        return f"/s/{slug}/recording/{position}.{'mp4' if kind == 'video' else 'ogg'}"
