"""The documents: the README opens with the two commands (.ci/run runs the second), and no
document or source file cites a file that is not in the repository."""

import re
import subprocess
import sys

import pytest

README_COMMANDS = [
    "python3.11 -m venv .venv && .venv/bin/pip install torch==2.13.0 -e '.[test]' && .venv/bin/snakemake --cores all",
    "python3.11 -m venv .venv && .venv/bin/pip install torch==2.13.0 -e '.[test]' && bash tests/run.sh",
]


def test_readme_opens_with_the_two_commands(root):
    text = (root / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", text, re.S)
    assert blocks[:2] == README_COMMANDS
    assert text.index(README_COMMANDS[1]) < text.index("\n## ")  # before the first section
    assert README_COMMANDS[1] in (root / ".ci" / "run").read_text()
    assert len(text.splitlines()) <= 230


def test_markdown_links_resolve(root):
    docs = [root / "README.md", root / "config" / "README.md", *sorted((root / "docs").glob("*.md"))]
    for doc in docs:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if "://" not in target:
                assert (doc.parent / target).exists(), f"{doc.relative_to(root)} links {target}"


def test_no_file_cites_a_missing_document(root):
    tracked = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.split()
    this = "tests/test_docs.py"
    cited = re.compile(r"PHYSICS\.md|DESIGN\.md|\.\./shared")
    hits = [f for f in tracked if f != this and (root / f).is_file() and (root / f).suffix != ".png"
            and cited.search((root / f).read_text(errors="ignore"))]
    assert not hits


@pytest.mark.parametrize("config", ["config/config.yaml", "config/paper.yaml"])
def test_readme_job_counts_are_those_of_a_dry_run(root, config):
    """The README's dry-run block says how many jobs each config has: as `snakemake -n -F` does."""
    said = re.search(r"-n {2,}# the quick config: (\d+) jobs" if config.endswith("config.yaml")
                     else r"--configfile config/paper.yaml +# the papers' scale: (\d+) jobs",
                     (root / "README.md").read_text())
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-F", "--configfile", config],
                          cwd=root, capture_output=True, text=True, timeout=300)
    total = re.search(r"^total\s+(\d+)$", proc.stdout + proc.stderr, re.M)
    assert said and total, proc.stderr[-2000:]
    assert said.group(1) == total.group(1), f"README says {said.group(1)} jobs, a dry run {total.group(1)}"
