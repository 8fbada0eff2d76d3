"""Text from outside: control characters are refused where they are validated, naming the field.

NUL and the other C0 controls (and DEL) have no business in a prompt, a name, a file name or an
error message: PostgreSQL refuses NUL outright (later, as a 500), and the others garble logs and
pages. Free text (prompts, error messages) may hold line breaks and tabs; names may not.
"""

from __future__ import annotations

import re

LINE_BREAKS = {"\t", "\n", "\r"}


def control_problem(value: str, *, free_text: bool = False) -> str | None:
    """What is wrong with `value`, or None: the first control character and where it is."""
    for index, char in enumerate(value):
        code = ord(char)
        if (code < 0x20 or code == 0x7F) and not (free_text and char in LINE_BREAKS):
            allowed = "; line breaks and tabs are fine" if free_text else ""
            return (
                f"holds the control character U+{code:04X} at position {index}; remove it{allowed}"
            )
    return None


def check_text(value: str, *, free_text: bool = False) -> str:
    """`value`, or ValueError saying which control character it holds (for pydantic)."""
    problem = control_problem(value, free_text=free_text)
    if problem is not None:
        raise ValueError(problem)
    return value


URL = re.compile(r"(?i)\b((?:https?|wss?|s3|gs)://[^\s/?#\"'<>]+)([^\s?#\"'<>]*)([?#][^\s\"'<>]*)?")


def without_url_queries(text: str) -> str:
    """`text` with every URL's query and fragment cut off (`?…`): a signed URL (a Runway output
    link, a storage link) carries its signature there, and a webhook URL often a token."""
    return URL.sub(lambda m: m.group(1) + m.group(2) + ("?…" if m.group(3) else ""), text)


def without_url_paths(text: str) -> str:
    """`text` with every URL cut to its scheme and host (`https://hooks.example/…`): for the
    webhook receivers' URLs, whose paths are often a secret of the receiver."""
    return URL.sub(lambda m: m.group(1) + ("/…" if m.group(2) or m.group(3) else ""), text)
