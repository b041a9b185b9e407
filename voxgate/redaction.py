"""Credentials out of URLs before they are shown: in logs, in errors, in `voxgate config`.

A backend URL may carry userinfo (`http://user:secret@llm.internal:8000/v1`), and both `httpx` and
the `openai` client keep it in `base_url` and in some of their exception texts. One helper masks
the password of one URL, the other every URL inside a free text (an exception's message), so that
no path to a client or a log line has to know which texts may hold one.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
#: scheme://user:password@ or scheme://token@ inside any text.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^\s/@:]*)(?::(?P<password>[^\s/@]*))?@")


def mask_url(url: str) -> str:
    """http://user:pass@host/v1 → http://user:***@host/v1 (a bare token as the user is masked too);
    a URL without userinfo, or that does not parse, comes back as it was."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return redact(url)
    if "@" not in parts.netloc:
        return url
    user = parts.username or ""
    shown_user, secret = (user, MASK) if parts.password is not None else (MASK, None)
    userinfo = f"{shown_user}:{secret}" if secret is not None else shown_user
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{userinfo}@{host}" + (f":{port}" if port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def redact(text: str) -> str:
    """`text` with the credentials of every URL in it masked, as `mask_url` masks one."""

    def masked(match: re.Match[str]) -> str:
        if match.group("password") is not None:
            return f"{match.group('scheme')}{match.group('user')}:{MASK}@"
        return f"{match.group('scheme')}{MASK}@"

    return _USERINFO.sub(masked, text)
