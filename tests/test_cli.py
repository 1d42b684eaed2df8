"""``python -m aelab``: listings, train, evaluate, and one-line errors with status 2."""
import json
import subprocess
import sys

import pytest

from aelab.cli import main
from aelab.models import list_variants


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "aelab", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_variants_lists_every_registered_variant_with_parameters(capsys):
    assert main(["variants", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert list(rows) == list_variants()
    assert {p["name"]: p["default"] for p in rows["sparse"]["parameters"]} == {
        "rho": 0.05, "sparsity_weight": 1.0}
    betavae = {p["name"]: p["default"] for p in rows["betavae"]["parameters"]}
    assert set(betavae) == {"beta", "capacity_max", "capacity_steps", "gamma", "prune_kl_below",
                            "free_bits"}
    assert betavae["beta"] == 4.0 and betavae["prune_kl_below"] == 0.0  # no pruning unless asked
    assert main(["variants"]) == 0
    text = capsys.readouterr().out
    assert "k_test_multiplier=1.0" in text and "noise=gaussian" in text


def test_datasets_says_what_is_available_offline(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("AELAB_DATA", str(tmp_path))
    assert main(["datasets", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["digits"]["offline"] and rows["digits"]["train"] + rows["digits"]["test"] == 1797
    assert rows["mnist5k"]["offline"] and not rows["mnist"]["offline"]
    assert "npz:PATH" in rows


@pytest.mark.slow
def test_train_then_evaluate_json(runs_dir):
    done = run_cli("train", "--variant", "vae", "--dataset", "digits", "--epochs", "2",
                   "--latent-dim", "3", "--hidden", "32", "--seed", "1", "--device", "cpu",
                   "--runs-dir", str(runs_dir))
    assert done.returncode == 0, done.stderr
    run_dir = done.stdout.strip().splitlines()[-1]
    assert run_dir.startswith(str(runs_dir))
    result = run_cli("evaluate", run_dir, "--json")
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert set(scores) >= {"recon_mse", "recon_bce", "pca_recon_mse", "elbo", "kl", "kl_per_dim",
                           "active_units", "knn_acc", "linear_acc", "pca_knn_acc", "pca_linear_acc"}
    assert len(scores["kl_per_dim"]) == 3 and scores["n_images"] == 270
    assert 0 < scores["recon_mse"] < 1 and scores["elbo"] < 0
    assert scores["kl"] == pytest.approx(sum(scores["kl_per_dim"]), rel=1e-4)
    assert 0 <= scores["active_units"] <= 3


def test_train_param_and_out_and_evaluate_on_a_whole_npz(runs_dir, tmp_path, capsys):
    import numpy as np

    out = tmp_path / "my-run"
    assert main(["train", "--variant", "ksparse", "--dataset", "digits", "--epochs", "1",
                 "--latent-dim", "6", "--param", "k=2", "--param", "k_test_multiplier=1.5",
                 "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["k"] == 2 and config["model"]["k_test_multiplier"] == 1.5
    from aelab.data.datasets import load_dataset
    ds = load_dataset("digits")
    np.savez(tmp_path / "d.npz", x=(ds.x_test[:50, 0] * 255).round().astype(np.uint8))
    capsys.readouterr()
    assert main(["evaluate", str(out), "--dataset", f"npz:{tmp_path / 'd.npz'}", "--json",
                 "--runs-dir", str(tmp_path)]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["n_images"] == 50 and "knn_acc" not in scores


BAD_ARGS = [
    (["--variant", "nope"], "unknown variant 'nope'; choose one of: ae, denoising, sparse, ksparse"),
    (["--dataset", "nope"],
     "unknown dataset 'nope'; choose one of: digits, mnist5k, shapes, shapes32, shapes64, mnist"),
    (["--variant", "ksparse", "--latent-dim", "4", "--param", "k=5"],
     "k (5) must not exceed latent_dim (4)"),
    (["--variant", "sparse", "--param", "rho=1.5"], "rho must be in (0.0, 1.0), got 1.5"),
    (["--variant", "sparse", "--param", "rho=0"], "rho must be in (0.0, 1.0), got 0.0"),
    (["--variant", "betavae", "--param", "beta=-1"], "beta must be >= 0.0, got -1.0"),
    (["--variant", "sparse", "--param", "sparsity_weight=-0.1"], "sparsity_weight must be >= 0.0"),
    (["--variant", "contractive", "--param", "contractive_weight=-2"], "contractive_weight must be >= 0.0"),
    (["--variant", "betavae", "--param", "gamma=-2"], "gamma must be >= 0.0"),
    (["--latent-dim", "0"], "latent_dim must be in [1, 4096], got 0"),
    (["--variant", "denoising", "--param", "noise_level=1.5"], "noise_level must be in [0.0, 1.0], got 1.5"),
    (["--variant", "denoising", "--param", "noise=pink"],
     "noise must be one of: gaussian, masking, salt_pepper; got 'pink'"),
    (["--arch", "rnn"], "arch must be one of: mlp, conv, burgess; got 'rnn'"),
    (["--param", "beta=2"], "unknown parameter 'beta' for variant 'ae'"),
    (["--param", "oops"], "--param expects NAME=VALUE, got 'oops'"),
    (["--epochs", "-1"], "epochs must be in [0, 100000], got -1"),
    (["--lr", "-1"], "lr must be in (0.0, 10.0], got -1.0"),
    (["--device", "tpu"], "device must be one of: auto, cpu, cuda, cuda:N, mps; got 'tpu'"),
    (["--hidden", "a,b"], "hidden must be comma-separated integers"),
    (["--epochs", "two"], "argument --epochs: invalid int value: 'two'"),
]


@pytest.mark.parametrize("args,message", BAD_ARGS)
def test_bad_arguments_exit_2_with_one_line_before_training(args, message, runs_dir, capsys):
    base = {"--variant": "ae", "--dataset": "digits"}
    argv = list(args)
    for flag, value in base.items():
        if flag not in argv:
            argv += [flag, value]
    with pytest.raises(SystemExit) if "invalid int" in message else _no_raise():
        code = main(["train", *argv, "--runs-dir", str(runs_dir)])
        assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err, err
    assert list(runs_dir.iterdir()) == []


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_cuda_request_without_gpu_is_a_clear_error(runs_dir, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["train", "--variant", "ae", "--dataset", "digits", "--device", "cuda",
                 "--runs-dir", str(runs_dir)]) == 2
    assert "no CUDA GPU is available" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_unknown_run_and_subprocess_exit_status(tmp_path):
    result = run_cli("evaluate", "no-such-run", "--runs-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: no run 'no-such-run' in {tmp_path} "
                                     f"(see `python -m aelab runs list`)")
