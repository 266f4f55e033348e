"""The Snakefile and its jobs use one physml: a checkout whose src/ is not the installed
physml is refused at parse time with what to do."""

import shutil
import subprocess
import sys


def test_a_checkout_other_than_the_installed_physml_is_refused(root, tmp_path):
    for item in ("Snakefile", "workflow", "config", "profiles", "envs"):
        src = root / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / item)
    (tmp_path / "src" / "physml").mkdir(parents=True)   # a second checkout of physml
    (tmp_path / "src" / "physml" / "__init__.py").write_text('__version__ = "9.9"\n')
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert f"not this checkout's {tmp_path / 'src' / 'physml'}" in proc.stderr
    assert f"pip install -e {tmp_path}" in proc.stderr
    assert "Traceback" not in proc.stderr and "Building DAG" not in proc.stdout + proc.stderr
