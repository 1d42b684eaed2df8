"""bench/gpu_check.py in its CI form (``--device cpu --quick``): it runs, within a minute, and
its report holds every check, each passed, with what it measured."""
import json
import os
import subprocess
import sys
import time

import pytest
from conftest import ROOT, VARIANTS

from aelab.training.demo_runs import DEMOS

pytestmark = pytest.mark.slow  # about 35 s on a quiet 2-core machine


def test_gpu_check_quick_on_the_cpu_passes_every_check(tmp_path):
    out = tmp_path / "gpu_check.json"
    start = time.monotonic()
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--device", "cpu",
                           "--quick", "--out", str(out)], capture_output=True, text=True,
                          timeout=240, env={**os.environ, "AELAB_THREADS": "1"})
    seconds = time.monotonic() - start
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    checks = report["checks"]
    assert report["device"] == "CPU" and report["quick"] and report["ok"]
    assert set(checks) == ({f"resume {v}" for v in VARIANTS}
                           | {"background run + pages", "precision fp32", "precision bf16",
                              "throughput vs CPU", "recipe demo-vae", "recipe demo-betatcvae-shapes"})
    assert all(row["ok"] and row["why"] == "" for row in checks.values())
    for variant in VARIANTS:  # stopped part-way, resumed, the same weights to the bit
        row = checks[f"resume {variant}"]
        assert 0 < row["stopped_at"] < row["steps"] and row["max_weight_difference"] == 0.0
    assert checks["background run + pages"]["device"] == "CPU"
    assert checks["precision bf16"]["step_ms"] > 0 and checks["precision bf16"]["speedup_vs_fp32"] > 0
    assert checks["throughput vs CPU"]["ratio_to_cpu"] == 1.0  # the CPU against itself
    recipe = checks["recipe demo-betatcvae-shapes"]
    variant, dataset, _, train = DEMOS["demo-betatcvae-shapes"]
    assert recipe["recipe_steps"] == train["epochs"] * 938  # 120,000 pool sprites / batch 128
    assert recipe["recipe_minutes"] == pytest.approx(
        recipe["recipe_steps"] / recipe["steps_per_second"] / 60, rel=0.05)
    for name in checks:  # the printed table: a row per check
        assert f"ok   {name}" in done.stdout
    assert seconds < 120  # under 60 s on a quiet machine; slack for a loaded one
