"""Print a profile's overrides as command-line flags, one token per line.

Usage: python scripts/profile_flags.py profiles/quick.yaml --dvc     (-S key=value, for `dvc exp run`)
       python scripts/profile_flags.py profiles/quick.yaml --stargan (--set key=value, for `stargan ...`)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


def flags(profile: Path, option: str) -> list[str]:
    """Return [option, "key=value", ...] for every key of a flat YAML mapping.

    `dvc exp run -S` parses values with Hydra's override grammar, so strings are single-quoted (a regular
    expression such as ^(\\d\\d) is not a valid bare value there) and lists are written as JSON.
    """
    overrides = yaml.safe_load(profile.read_text(encoding="utf-8")) or {}
    if not isinstance(overrides, dict):
        raise SystemExit(f"{profile} must map dotted keys to values, e.g. train.num_iters: 40")
    tokens = []
    for key, value in overrides.items():
        if isinstance(value, (list, dict, bool)):
            text = json.dumps(value)
        elif isinstance(value, str) and option == "-S":
            text = "'" + value.replace("'", "\\'") + "'"
        else:
            text = str(value)
        tokens += [option, f"{key}={text}"]
    return tokens


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[2] not in ("--dvc", "--stargan"):
        raise SystemExit(__doc__)
    option = "-S" if sys.argv[2] == "--dvc" else "--set"
    print("\n".join(flags(Path(sys.argv[1]), option)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
