"""Reading a project's files from a package index's simple API (PEP 503 HTML / PEP 691 JSON).

Every index speaks the simple API (PyPI, mirrors, devpi, Artifactory, PyTorch's wheel index),
unlike PyPI's own JSON API, so this is what the version listing reads. JSON is asked for
first and HTML understood as well. Network calls carry a timeout and fail as one EnvError
that says the index could not be reached.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from gpumon.envs.errors import EnvError
from gpumon.envs.requirement import normalize

ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"
OFFLINE_FIX = "offline? run the pool under an existing interpreter with python=PATH"


@dataclass(frozen=True)
class DistFile:
    filename: str
    requires_python: str | None = None
    yanked: bool = False
    size: int | None = None


def project_url(index_url: str, project: str) -> str:
    return f"{index_url.rstrip('/')}/{normalize(project)}/"


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.files: list[DistFile] = []
        self._attrs: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._attrs = dict(attrs)
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._attrs is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._attrs is not None:
            href = self._attrs.get("href") or ""
            name = "".join(self._text).strip() or urllib.parse.unquote(
                href.split("#", 1)[0].rsplit("/", 1)[-1]
            )
            self.files.append(
                DistFile(
                    filename=name,
                    requires_python=self._attrs.get("data-requires-python"),
                    yanked="data-yanked" in self._attrs,
                )
            )
            self._attrs = None


def _parse(body: bytes, content_type: str) -> list[DistFile]:
    if "json" in content_type:
        data = json.loads(body)
        return [
            DistFile(
                filename=str(f["filename"]),
                requires_python=f.get("requires-python"),
                yanked=bool(f.get("yanked")),
                size=f.get("size"),
            )
            for f in data.get("files", [])
        ]
    parser = _Anchors()
    parser.feed(body.decode("utf-8", "replace"))
    return parser.files


def unreachable(index_url: str, why: str) -> EnvError:
    host = urllib.parse.urlsplit(index_url).netloc or index_url
    return EnvError(
        f"cannot reach the package index {host} ({why})", OFFLINE_FIX, kind="unreachable"
    )


def project_files(index_url: str, project: str, timeout: float = 10.0) -> list[DistFile] | None:
    """The files the index lists for `project`; None when the index does not know it."""
    url = project_url(index_url, project)
    if url.startswith("file:"):
        folder = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
        page = folder / "index.html"
        try:
            return _parse(page.read_bytes(), "text/html")
        except FileNotFoundError:
            return None
        except OSError as e:
            raise unreachable(index_url, e.strerror or str(e)) from None
    request = urllib.request.Request(url, headers={"Accept": ACCEPT, "User-Agent": "gpumon"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
            content_type = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise unreachable(index_url, f"HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        reason = e.reason
        why = getattr(reason, "strerror", None) or str(reason)
        raise unreachable(index_url, str(why)) from None
    except (TimeoutError, OSError) as e:
        raise unreachable(index_url, str(e) or "timed out") from None
    try:
        return _parse(body, content_type)
    except (ValueError, KeyError, TypeError):
        raise EnvError(
            f"the package index at {url} answered with something that is not a simple-API page",
            "check UV_DEFAULT_INDEX / PIP_INDEX_URL",
            kind="unreachable",
        ) from None


def reachable(index_url: str, timeout: float = 5.0) -> str | None:
    """None when the index answers at all (any HTTP status); else why not."""
    if not index_url.startswith(("http://", "https://")):
        return None
    request = urllib.request.Request(index_url, method="HEAD", headers={"User-Agent": "gpumon"})
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None
    except urllib.error.URLError as e:
        return str(getattr(e.reason, "strerror", None) or e.reason)
    except (TimeoutError, OSError) as e:
        return str(e) or "timed out"
