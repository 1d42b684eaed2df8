"""The precision setting: bfloat16 autocast training with float32 weights, optimizer and loss;
what ``auto`` picks and why; the decision in config.json; bf16 training sane and resumable for
every variant (issue 30)."""
import itertools
import json
import math
import time
from types import SimpleNamespace

import pytest
import torch
from conftest import TINY, VARIANTS, open_page

from aelab.cli import main
from aelab.config import TrainConfig
from aelab.data import datasets
from aelab.errors import ConfigError
from aelab.models import get_variant
from aelab.models.ae import VanillaAE
from aelab.models.nn import Decoder
from aelab.runs.folder import load_model, read_config, read_metrics, read_status, read_tensors
from aelab.runs.train import train_run
from aelab.training import precision as prec
from aelab.training import trainer
from aelab.training.setup import prepare_run, validate_run

CPU = torch.device("cpu")
needs_bf16 = pytest.mark.skipif(not prec.bf16_support(CPU)[0],
                                reason="this CPU's torch has no bfloat16 kernels")


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """The measured speed-up is cached under this test's folder, not the user's home."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def small_pool(monkeypatch):
    """shapes32 with a 256-sprite pool: a few steps per epoch for the variants on pairs."""
    monkeypatch.setattr(datasets, "SHAPES_POOL", 256)
    datasets._shapes_pool.cache_clear()
    yield
    datasets._shapes_pool.cache_clear()


def test_precision_is_a_validated_train_setting_defaulting_to_fp32():
    assert TrainConfig().precision == "fp32"
    assert TrainConfig.from_dict({"precision": "bf16"}).precision == "bf16"
    with pytest.raises(ConfigError, match=r"^precision must be one of: fp32, bf16, auto; got 'fp16'$"):
        TrainConfig.from_dict({"precision": "fp16"})
    # a run saved before the setting existed was trained in float32
    assert TrainConfig.from_saved({"epochs": 3}).precision == "fp32"


def test_auto_follows_the_cpu_speedup_and_says_why(monkeypatch):
    vae = get_variant("vae")
    monkeypatch.setattr(prec, "bf16_support", lambda device: (True, "has bfloat16 kernels"))
    for speedup, used in ((1.2, "fp32"), (1.5, "bf16"), (3.0, "bf16")):
        monkeypatch.setattr(prec, "cpu_bf16_speedup", lambda s=speedup: (s, "measured just now"))
        choice = prec.choose_precision("auto", CPU, vae)
        assert (choice.asked, choice.used) == ("auto", used)
        assert f"{speedup:.2f}x its float32 one" in choice.reason
    assert prec.choose_precision("fp32", CPU, vae).used == "fp32"
    monkeypatch.setattr(prec, "bf16_support", lambda device: (False, "no bfloat16 kernels"))
    assert prec.choose_precision("auto", CPU, vae).reason == "float32: no bfloat16 kernels"
    with pytest.raises(ConfigError, match=r"^precision bf16 is not available here \(no bfloat16 "
                                          r"kernels\); use fp32 or auto$"):
        prec.choose_precision("bf16", CPU, vae)


def test_amx_flags_pick_bf16_without_measuring(monkeypatch):
    monkeypatch.setattr(prec, "cpu_flags", lambda: {"avx512f", "amx_tile", "amx_bf16"})
    monkeypatch.setattr(prec, "measure_bf16_speedup", lambda: pytest.fail("measured on AMX"))
    monkeypatch.setattr(prec, "bf16_support", lambda device: (True, "has bfloat16 kernels"))
    choice = prec.choose_precision("auto", CPU, get_variant("ae"))
    assert choice.used == "bf16" and "amx_bf16" in choice.reason


def test_the_speedup_is_measured_once_per_cpu_and_torch_and_cached(monkeypatch):
    monkeypatch.setattr(prec, "cpu_flags", lambda: set())
    real = prec.measure_bf16_speedup
    calls = []
    monkeypatch.setattr(prec, "measure_bf16_speedup", lambda: calls.append(1) or real())
    start = time.perf_counter()
    first, source = prec.cpu_bf16_speedup()
    assert time.perf_counter() - start < 5.0  # well under a second on a quiet machine
    assert source == "measured just now" and math.isfinite(first) and first > 0
    again, source = prec.cpu_bf16_speedup()
    assert (again, len(calls)) == (first, 1) and source.startswith("measured once, cached in")
    cached = json.loads(prec.cache_file().read_text())
    assert cached == {f"{prec.cpu_model()} | torch {torch.__version__}": first}
    monkeypatch.setattr(prec, "cpu_model", lambda: "another CPU")  # another key: measured again
    prec.cpu_bf16_speedup()
    assert len(calls) == 2 and len(json.loads(prec.cache_file().read_text())) == 2


def test_a_variant_that_cannot_train_in_bf16_stays_fp32_under_auto_and_refuses_bf16(monkeypatch):
    # every shipped variant trains in bf16 (test_bf16_training_is_sane_and_resumes_exactly)
    assert all(not get_variant(v).fp32_only for v in VARIANTS)
    monkeypatch.setattr(VanillaAE, "fp32_only", "needs float32 for a test")
    monkeypatch.setattr(prec, "cpu_bf16_speedup", lambda: (4.0, "measured just now"))
    choice = prec.choose_precision("auto", CPU, VanillaAE)
    assert choice.used == "fp32" and choice.reason == "float32: ae needs float32 for a test"
    with pytest.raises(ConfigError, match=r"^ae cannot train in bf16 \(needs float32 for a test\); "
                                          r"use precision fp32 or auto$"):
        validate_run("ae", "digits", TINY, {"precision": "bf16"})


@needs_bf16
def test_config_json_records_what_was_asked_what_is_used_and_why(runs_dir, monkeypatch, capfd):
    monkeypatch.setattr(prec, "cpu_bf16_speedup", lambda: (2.0, "measured just now"))
    run = prepare_run("ae", "digits", TINY, {"epochs": 1, "precision": "auto"}, runs_dir=runs_dir)
    saved = json.loads((run / "config.json").read_text())
    assert saved["train"]["precision"] == "auto"
    assert saved["precision"] == {"asked": "auto", "used": "bf16", "reason": (
        "bfloat16 autocast: this CPU's bfloat16 matmul is 2.00x its float32 one (measured just now)")}
    monkeypatch.setattr(prec, "cpu_bf16_speedup", lambda: pytest.fail("decided again"))
    assert train_run(run)["state"] == "done"  # trains in what was decided when it was made
    assert "precision auto: bf16, bfloat16 autocast: this CPU's" in capfd.readouterr().err
    old = prepare_run("ae", "digits", TINY, {"epochs": 1}, runs_dir=runs_dir)
    config = json.loads((old / "config.json").read_text())
    del config["precision"], config["train"]["precision"]  # a run saved before the setting
    (old / "config.json").write_text(json.dumps(config))
    assert prec.run_precision(read_config(old), CPU, VanillaAE).used == "fp32"


@needs_bf16
def test_bf16_runs_the_forward_in_bfloat16_and_keeps_everything_saved_in_float32(runs_dir,
                                                                                  monkeypatch):
    training, seen = [], []  # the decoder's outputs in train mode, and in eval mode
    forward = Decoder.forward
    monkeypatch.setattr(Decoder, "forward", lambda self, z, cond=None: (
        (training if self.training else seen).append(out := forward(self, z, cond)) or out))
    run = prepare_run("vae", "digits", {**TINY, "arch": "conv", "hidden": "8,16"},
                      {"epochs": 1, "precision": "bf16", "log_every": 5}, runs_dir=runs_dir)
    assert train_run(run)["state"] == "done"
    assert training and all(out.dtype == torch.bfloat16 for out in training)
    # the probe frames (probes.safetensors, the model in eval mode): float32, no autocast
    assert seen and all(out.dtype == torch.float32 for out in seen)
    weights, _ = read_tensors(run / "model.safetensors")
    state, _ = read_tensors(run / "train_state.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.float32}
    assert {t.dtype for t in state.values() if t.is_floating_point()} == {torch.float32}
    seen.clear()
    model = load_model(run)  # evaluation and caches: float32, no autocast
    assert model(torch.rand(3, 1, 8, 8)).recon.dtype == torch.float32
    assert all(out.dtype == torch.float32 for out in seen)
    assert all(math.isfinite(r["loss"]) for r in read_metrics(run) if "loss" in r)


def cancel_after(monkeypatch, steps: int):
    """A ``should_stop`` that stops the run after ``steps`` steps (the trainer's stop check
    made due every step, as in tests/test_train.py)."""
    clock = itertools.count(0.0, 0.3)
    monkeypatch.setattr(trainer, "time", SimpleNamespace(monotonic=lambda: next(clock),
                                                         time=time.time))
    calls = itertools.count()
    return lambda: next(calls) >= steps


def bf16_run(variant, runs_dir):
    """A small bf16 run of ``variant``: digits, or shapes32's small pool for the variants
    that learn from factors."""
    if get_variant(variant).factor_use:
        model = {"arch": "conv", "hidden": "4,8", "latent_dim": 6 if variant == "semivae" else 4,
                 **({"labels": 32, "label_batch": 8} if variant == "semivae" else {})}
        return prepare_run(variant, "shapes32", model, {"epochs": 3, "batch_size": 32,
                                                        "log_every": 5, "precision": "bf16"},
                           runs_dir=runs_dir)
    model = {**TINY, **({"k": 2} if variant == "ksparse" else {}),
             **({"disc_hidden": "32,32"} if variant == "factorvae" else {})}
    return prepare_run(variant, "digits", model, {"epochs": 1, "batch_size": 48, "log_every": 5,
                                                  "precision": "bf16"}, runs_dir=runs_dir)


@needs_bf16
@pytest.mark.parametrize("variant", VARIANTS)
def test_bf16_training_is_sane_and_resumes_exactly(variant, runs_dir, small_pool, monkeypatch):
    """Finite loss terms (the contractive penalty's double backward and FactorVAE's
    discriminator included), a falling loss, and a cancelled run that resumes in bf16 to the
    weights of the uninterrupted one."""
    whole, parts = bf16_run(variant, runs_dir), bf16_run(variant, runs_dir)
    assert read_config(whole)["precision"]["used"] == "bf16"
    assert train_run(whole)["state"] == "done"
    rows = [r for r in read_metrics(whole) if "loss" in r]
    assert all(math.isfinite(v) for r in rows for k, v in r.items() if k not in ("time",))
    if variant == "factorvae":
        assert all("disc" in r and "tc" in r for r in rows)
    if variant == "contractive":
        assert all(r["contractive"] > 0 for r in rows)
    assert rows[-1]["loss"] < rows[0]["loss"]
    half = read_status(whole)["step"] // 2
    assert train_run(parts, should_stop=cancel_after(monkeypatch, half))["state"] == "cancelled"
    assert read_status(parts)["step"] == half
    monkeypatch.undo()
    assert train_run(parts, resume=True)["state"] == "done"
    a, b = (read_tensors(run / "model.safetensors")[0] for run in (whole, parts))
    assert all(torch.equal(a[k], b[k]) for k in a)


@needs_bf16
def test_cli_train_and_sweep_take_precision(runs_dir, capsys):
    out = runs_dir / "one"
    assert main(["train", "--variant", "ae", "--dataset", "digits", "--epochs", "1", "--latent-dim",
                 "3", "--precision", "bf16", "--out", str(out)]) == 0
    assert read_config(out)["precision"]["used"] == "bf16"
    assert main(["train", "--variant", "ae", "--dataset", "digits", "--precision", "half"]) == 2
    assert "precision must be one of: fp32, bf16, auto; got 'half'" in capsys.readouterr().err
    assert main(["sweep", "--variant", "ae", "--dataset", "digits", "--grid", "latent_dim=2,3",
                 "--precision", "half", "--runs-dir", str(runs_dir)]) == 2
    assert "precision must be one of: fp32, bf16, auto; got 'half'" in capsys.readouterr().err


def test_train_page_has_a_precision_select_box():
    at = open_page("pages/train.py")
    box = at.selectbox(key="train.precision")
    assert box.options == ["fp32", "bf16", "auto"] and box.value == "fp32"
    assert box.label == "Precision" and "bfloat16" in box.help and "\n" not in box.help
