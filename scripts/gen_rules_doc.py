"""Write docs/rules.md from the rule registry (``--check``: exit 1 if it is out of date)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rigkit.design.docs import rules_markdown

DOC = Path(__file__).resolve().parent.parent / "docs" / "rules.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only check that the file is current")
    args = parser.parse_args()
    text = rules_markdown()
    if args.check:
        current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
        if current != text:
            print(f"{DOC} is out of date: run python scripts/gen_rules_doc.py", file=sys.stderr)
            return 1
        print(f"{DOC} is current")
        return 0
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
