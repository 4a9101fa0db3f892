"""A real (non-editable) build contains every module and data file: what a Docker image or
`pip install .` gets. Editable installs in development would hide a missing package."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contains_every_package_and_data_file(tmp_path: Path):
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q",
                           "-w", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    [wheel] = list(tmp_path.glob("datapost-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        str(p.relative_to(ROOT)) for top in ("worker", "producers", "sandbox")
        for p in (ROOT / top).rglob("*")
        if p.is_file() and p.suffix in (".py", ".lua") and "__pycache__" not in p.parts
    }
    missing = sorted(expected - names)
    assert not missing, f"not in the wheel: {missing[:10]}"
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "datapost = producers.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
