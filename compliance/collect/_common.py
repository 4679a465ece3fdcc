"""Helpers shared by the collectors: typed "not configured" handling and tag maps."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from botocore.exceptions import ClientError


class CollectionError(RuntimeError):
    """An AWS read failed for a reason other than "not configured"; names the call."""


def call(fn: Callable[..., Any], what: str, *absent: str, **kwargs: Any) -> Any:
    """Call ``fn(**kwargs)``; ``None`` when the error code is one of ``absent``.

    Any other AWS error becomes a :class:`CollectionError` naming ``what``.
    """
    try:
        return fn(**kwargs)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in absent:
            return None
        raise CollectionError(f"{what}: {code or exc}") from exc


def tag_map(tags: Iterable[Mapping[str, str]] | None, key: str = "Key", value: str = "Value") -> dict[str, str]:
    return {t[key]: t[value] for t in tags or ()}
