"""README.md's layout section is drawn from the tree (scripts/readme_layout.py), and every module path
it names in the text exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_layout_is_the_tree():
    block = subprocess.run([sys.executable, str(ROOT / "scripts" / "readme_layout.py")], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert block in (ROOT / "README.md").read_text(), "README's layout is stale: run python scripts/readme_layout.py --write"


def test_readme_names_only_files_that_exist():
    text = (ROOT / "README.md").read_text()
    named = set(re.findall(r"`((?:sombench|algorithms|labs|scripts|tests|docs)/[\w/.-]+\.(?:py|md|json|csv))`", text))
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert not missing, missing
