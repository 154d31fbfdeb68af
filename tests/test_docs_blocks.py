"""Every ```bash / ```sh / ```python block in README.md and docs/*.md runs as written.

Each block runs in a fresh temporary directory (so "from any working directory" is what is
tested), on CPU, offline, with env ``DLRL_REPO=<repo root>``: python blocks with this venv's
python, shell blocks with bash (``-e -o pipefail``) and this venv's ``bin/`` first on PATH.
A block that cannot run here (GPU, hub download, multi-GPU, long runtime) carries
``<!-- skip-doctest: reason -->`` on the line right before its fence; the reason is required.
Output and illustration blocks use ```text / ```yaml / ```json, which are not run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUN_LANGS = {"bash": "bash", "sh": "bash", "python": "python"}
FENCE = re.compile(r"^(?P<indent>\s*)(?P<ticks>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)[^`]*$")
SKIP = re.compile(r"^\s*<!--\s*skip-doctest:\s*(?P<reason>.*?)\s*-->\s*$")
TIMEOUT_S = 240  # one block; the examples are sized to take seconds


@dataclass
class Block:
    file: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    skip: str | None  # reason, or None when the block runs

    @property
    def id(self) -> str:
        return f"{self.file.relative_to(REPO).as_posix()}:{self.line}"


def doc_files(root: Path = REPO) -> list[Path]:
    return [p for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if p.is_file()]


def extract_blocks(path: Path) -> list[Block]:
    """Fenced blocks of a markdown file (any language), with the skip marker right above each."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        ticks, indent = m.group("ticks"), len(m.group("indent"))
        close = re.compile(rf"^\s*{re.escape(ticks[0])}{{{len(ticks)},}}\s*$")
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        body = [ln[indent:] if ln[:indent].strip() == "" else ln for ln in lines[i + 1 : j]]
        skip = SKIP.match(lines[i - 1]) if i > 0 else None
        blocks.append(
            Block(path, i + 1, m.group("lang").lower(), "\n".join(body) + "\n", skip and skip.group("reason"))
        )
        i = j + 1
    return blocks


def runnable_blocks() -> list[Block]:
    return [b for f in doc_files() for b in extract_blocks(f) if b.lang in RUN_LANGS]


BLOCKS = runnable_blocks()


def run_block(block: Block, cwd: Path, timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess:
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "DLRL_REPO": str(REPO),
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "CUDA_VISIBLE_DEVICES": "",
        "MPLBACKEND": "Agg",
        "PYTHONUNBUFFERED": "1",
        "TQDM_DISABLE": "1",
    }
    if RUN_LANGS[block.lang] == "python":
        script = cwd / "block.py"
        script.write_text(block.code)
        cmd = [sys.executable, str(script)]
    else:
        script = cwd / "block.sh"
        script.write_text(block.code)
        cmd = ["bash", "-e", "-o", "pipefail", str(script)]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_doc_block_runs(block: Block, tmp_path):
    if block.skip is not None:
        assert block.skip, f"{block.id}: skip-doctest needs a reason"
        pytest.skip(f"skip-doctest: {block.skip}")
    work = tmp_path / "work"
    work.mkdir()
    try:
        proc = run_block(block, work)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{block.id} ({block.lang}) ran past {TIMEOUT_S} s")
    assert proc.returncode == 0, (
        f"{block.id} ({block.lang}) exited {proc.returncode}\n--- code ---\n{block.code}"
        f"--- stdout (tail) ---\n{proc.stdout[-3000:]}\n--- stderr (tail) ---\n{proc.stderr[-3000:]}"
    )


# ---- the harness itself -------------------------------------------------------------------
def test_extractor_reads_fences_languages_and_skip_markers(tmp_path):
    md = tmp_path / "x.md"
    md.write_text(
        "text\n```bash\necho hi\n```\n<!-- skip-doctest: needs a GPU -->\n```python\nimport torch\n```\n"
        "```text\nnot run\n```\n  ```sh\n  echo indented\n  ```\n"
    )
    blocks = extract_blocks(md)
    assert [(b.lang, b.line, b.skip) for b in blocks] == [
        ("bash", 2, None), ("python", 6, "needs a GPU"), ("text", 9, None), ("sh", 12, None),
    ]  # fmt: skip
    assert blocks[0].code == "echo hi\n" and blocks[3].code == "echo indented\n"


def test_runner_sees_repo_env_and_fails_on_error(tmp_path):
    ok = Block(
        REPO / "README.md", 1, "bash", 'test -d "$DLRL_REPO/dlrl" && test "$PWD" != "$DLRL_REPO"\n', None
    )
    assert run_block(ok, tmp_path, timeout=30).returncode == 0
    bad = Block(REPO / "README.md", 1, "bash", "false\necho unreachable\n", None)
    proc = run_block(bad, tmp_path, timeout=30)
    assert proc.returncode != 0 and "unreachable" not in proc.stdout
    py = Block(REPO / "README.md", 1, "python", "import sys; sys.exit(3)\n", None)
    assert run_block(py, tmp_path, timeout=30).returncode == 3


def test_every_doc_file_is_scanned():
    assert (REPO / "README.md") in doc_files() and len(doc_files()) > 5
    assert BLOCKS, "no runnable blocks found: the extractor is broken"
