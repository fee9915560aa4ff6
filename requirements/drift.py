"""Print the installed packages whose version differs from the lock (for make test-latest).

Usage: python requirements/drift.py requirements/lock.txt  (in the environment to compare)
"""

from __future__ import annotations

import re
import sys
from importlib import metadata


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main(lock: str) -> None:
    pinned = {}
    with open(lock, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
            if m:
                pinned[canonical(m.group(1))] = m.group(2)
    newer = []
    for dist in metadata.distributions():
        name, version = canonical(dist.metadata["Name"]), dist.version.split("+")[0]
        if name in pinned and pinned[name] != version:
            newer.append(f"  {name}: {pinned[name]} in the lock, {version} here")
    print("versions that differ from the lock:" if newer else "the same versions as the lock")
    print("\n".join(sorted(newer)))


if __name__ == "__main__":
    main(sys.argv[1])
