"""The python examples in docs/*.md run as written (a block after a `doc-test: skip` comment is not run)."""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
BLOCK = re.compile(r"(<!-- doc-test: skip[^>]*-->\s*)?```python\n(.*?)```", flags=re.S)


@pytest.mark.parametrize("name", ["GENERATIVE.md", "INTEGRATIONS.md"])
def test_doc_examples_run(name, tmp_path, monkeypatch):
    text = (DOCS / name).read_text()
    blocks = [(skip, code) for skip, code in BLOCK.findall(text)]
    runnable = [code for skip, code in blocks if not skip]
    assert runnable, f"{name} has no runnable python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}  # later examples build on earlier ones, as in a reader's session
    for code in runnable:
        exec(compile(code, str(DOCS / name), "exec"), namespace)
