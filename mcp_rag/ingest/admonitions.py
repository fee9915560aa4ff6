"""The admonitions documentation wraps prose in, for the readers that meet them as
directives (reStructuredText's ``.. note::``, MyST's ``{note}``): which names are
admonitions, and the title each reads as, on the line above its content."""

from __future__ import annotations

# Admonitions, Sphinx's version notes and sphinx-design's dropdown
KINDS = frozenset(
    "admonition attention caution danger error hint important note seealso tip todo "
    "warning dropdown versionadded versionchanged deprecated".split())
# Sphinx's words for a version note's title: ".. versionadded:: 2.0", "New in version 2.0"
VERSIONS = {"versionadded": "New in version", "versionchanged": "Changed in version",
            "deprecated": "Deprecated since version"}
_TITLED = frozenset({"admonition", "dropdown"})  # their argument is their title


def kind(name: str) -> str:
    """An admonition's kind as its title: "seealso" is "See also", "version-added" is
    "Version added"."""
    return {"seealso": "See also"}.get(name, name.replace("-", " ").replace("_", " ")
                                       .capitalize())


def title(name: str, arg: str) -> tuple[str, str]:
    """(title, first line of content) of the directive ``name`` with the argument ``arg``
    (what follows it on its line): a version note's "New in version 2.0"; an
    admonition's or a dropdown's own title; else the kind, ``arg`` starting its content
    (".. warning:: Never run it as root.")."""
    if name in VERSIONS:
        return f"{VERSIONS[name]} {arg}".strip(), ""
    if name in _TITLED:
        return arg or kind(name), ""
    return kind(name), arg
