"""``python -m aelab`` (the ``aelab`` console script): variants, datasets, train, runs, sweep,
evaluate, disentangle, latent-scores, export.

Bad arguments exit with status 2 and one line on stderr saying what is wrong,
before anything is trained or written.
"""
from __future__ import annotations

import argparse
import json
import sys

from aelab.errors import AelabError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, status 2 (argparse prints usage too)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=1, default=str))


# --- commands ---
def cmd_variants(args) -> int:
    from aelab.models import get_variant, list_variants

    rows = []
    for name in list_variants():
        cls = get_variant(name)
        rows.append({"name": name, "description": cls.summary(),
                     "parameters": cls.Config.own_parameters()})
    if args.json:
        _print_json(rows)
        return 0
    for row in rows:
        print(f"{row['name']:<12} {row['description']}")
        for p in row["parameters"]:
            print(f"{'':<14}{p['name']}={p['default']}  ({p['help']})")
    common = get_variant("ae").Config.parameters()
    print("\ncommon to all: " + ", ".join(f"{p['name']}={p['default'] or 'auto'}" for p in common))
    return 0


def cmd_datasets(args) -> int:
    from aelab.data.datasets import list_datasets

    rows = list_datasets()
    rows.append({"name": "npz:PATH", "offline": True, "shipped": False,
                 "note": "your file: x_train, x_test (+ y_train, y_test), or x (+ y)"})
    if args.json:
        _print_json(rows)
        return 0
    for row in rows:
        where = "offline" if row["offline"] else "needs a download (not cached)"
        size = (f"{row['train']} train / {row['test']} test, {'x'.join(map(str, row['shape']))}, "
                f"{row['classes']} classes") if "train" in row else row.get("note", "")
        print(f"{row['name']:<14} {where:<30} {size}")
    return 0


def _parse_params(items: list[str] | None) -> dict[str, str]:
    """``--param NAME=VALUE`` items as a dict."""
    pairs = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise AelabError(f"--param expects NAME=VALUE, got {item!r}")
        pairs[name.strip()] = value.strip()
    return pairs


def _train_params(args) -> tuple[dict, dict]:
    """(model settings, training settings) from the flags; ``--param`` names a setting of
    either kind (training settings such as max_minutes have no flag of their own)."""
    import dataclasses

    from aelab.config import TrainConfig

    training_names = {f.name for f in dataclasses.fields(TrainConfig)}
    model, train = {}, {}
    for name, value in _parse_params(args.param).items():
        (train if name in training_names else model)[name] = value
    if args.hidden is not None and not args.hidden.strip():
        raise AelabError("--hidden needs comma-separated sizes such as 400,200 (leave it out for "
                         "the architecture's default)")
    for flag, key in (("latent_dim", "latent_dim"), ("arch", "arch"), ("hidden", "hidden")):
        if getattr(args, flag) is not None:
            model[key] = getattr(args, flag)
    for key in ("epochs", "batch_size", "lr", "seed", "device", "precision"):
        if getattr(args, key) is not None:
            train[key] = getattr(args, key)
    return model, train


def cmd_presets(args) -> int:
    from aelab.training.presets import PRESETS

    rows = [{"name": name, "about": p.about, "variant": p.variant, "dataset": p.dataset,
             "model": p.model, "train": p.train} for name, p in PRESETS.items()]
    if args.json:
        _print_json(rows)
        return 0
    for row in rows:
        print(f"{row['name']:<20} {row['about']}")
    return 0


def cmd_train(args) -> int:
    from aelab.runs.train import train_run
    from aelab.training.presets import apply_preset
    from aelab.training.setup import prepare_run

    args.variant, args.dataset, model_params, train_params = apply_preset(
        args.preset, args.variant, args.dataset, *_train_params(args))
    if args.background:
        from aelab.runs.local import RunManager

        if args.out:
            raise AelabError("--out cannot be used with --background; background runs live in "
                             "the runs folder (choose it with --runs-dir)")
        manager = RunManager(args.runs_dir)
        run_id = manager.submit(args.variant, args.dataset, model_params, train_params)
        print(f"{run_id} {manager.runs_dir / run_id}")
        return 0
    run_dir = prepare_run(args.variant, args.dataset, model_params, train_params,
                          runs_dir=args.runs_dir, out=args.out)
    bar = _ProgressBar() if sys.stderr.isatty() else None  # no bar in a log or a pipe
    try:
        status = train_run(run_dir, progress=bar.update if bar else None)
    except KeyboardInterrupt:
        print(f"\ninterrupted; the last checkpoint is in {run_dir}", file=sys.stderr)
        return 130
    finally:
        if bar:
            bar.close()
    if status["state"] != "done":
        print(f"run {status['state']}: {status.get('error') or ''}".rstrip(": "), file=sys.stderr)
        print(run_dir)
        return 1
    print(run_dir)
    return 0


class _ProgressBar:
    """A tqdm bar of a training run's progress (for an interactive terminal)."""

    def __init__(self):
        from tqdm import tqdm

        self.bar = tqdm(total=1.0, unit="run", bar_format="{l_bar}{bar}| {postfix}")

    def update(self, status):
        self.bar.n = status.get("progress", 0.0)
        sps = status.get("samples_per_second") or 0
        self.bar.set_postfix_str(f"epoch {status.get('epoch', 0):.2f}  {sps:,.0f} samples/s")

    def close(self):
        self.bar.close()


def cmd_evaluate(args) -> int:
    from aelab.metrics.evaluate import evaluate_run
    from aelab.runs.refs import RunRef

    scores = evaluate_run(RunRef.checked(args.run, args.runs_dir, anywhere=True), dataset=args.dataset)
    if args.json:
        print(json.dumps(scores))
        return 0
    for key, value in scores.items():
        if isinstance(value, float):
            value = f"{value:.4f}"
        elif isinstance(value, list):
            value = " ".join(f"{v:.3f}" for v in value)
        print(f"{key:<16} {value}")
    return 0


def _fmt_row(row: dict) -> str:
    if row["state"] == "damaged":
        return f"{row['id']:<40} damaged: {row['damaged']}"
    progress = f"{100 * (row.get('progress') or 0):5.1f}%"
    return (f"{row['id']:<40} {row['variant']:<11} {row['dataset'][:16]:<16} {row['state']:<11} "
            f"{progress} {row.get('device') or '-'}")


def cmd_runs(args) -> int:
    from aelab.runs.local import RunManager

    manager = RunManager(args.runs_dir)
    if args.action == "list":
        rows = manager.list()
        if args.json:
            _print_json(rows)
        else:
            print(f"{'id':<40} {'variant':<11} {'dataset':<16} {'state':<11} {'done':>6} device")
            for row in rows:
                print(_fmt_row(row))
        return 0
    if not args.run:
        raise AelabError(f"runs {args.action} needs a run id")
    from aelab.runs.refs import RunRef

    run = RunRef.checked(args.run, manager.runs_dir, anywhere=True)  # resolved once, here
    args.run = run.run_id
    if args.action == "show":
        info = manager.show(run)
        if args.json:
            _print_json(info)
        else:
            for key, value in info.items():
                print(f"{key:<20} {value}")
        return 0
    if args.action == "cancel":
        status = manager.cancel(run)
        print(f"{args.run} {status['state'] if status['state'] != 'running' else 'cancel requested'}")
    elif args.action == "resume":
        manager.resume(run)
        print(f"{args.run} queued to resume")
    elif args.action == "delete":
        left = manager.delete(run)
        if left:
            print(f"{args.run}: its run files were deleted; {run.path} stays, holding files aelab "
                  f"did not write: {', '.join(left)}")
        else:
            print(f"{args.run} deleted")
    return 0


def cmd_sweep(args) -> int:
    import contextlib
    import time

    from aelab.runs.execution import get_backend
    from aelab.runs.study import Study, StudySpec, check_backend_args, parse_grid, summarise

    check_backend_args(args.ray, args.ray_address, args.gpus_per_trial)
    params = _parse_params(args.param)
    if args.epochs is not None:
        params["epochs"] = str(args.epochs)
    if args.precision is not None:
        params["precision"] = args.precision
    spec = StudySpec(args.variant, args.dataset, parse_grid(args.grid or []), args.seeds,
                     params, args.study)
    spec.validate()  # before any folder is written or a cluster is started
    out = sys.stderr if args.json else sys.stdout
    started = time.monotonic()

    def show(rows):
        print(f"[{time.monotonic() - started:6.1f}s] study {spec.id}: {summarise(rows)}",
              file=out, flush=True)

    with contextlib.redirect_stdout(out):  # Ray's own notices must not break --json
        backend = get_backend(args.runs_dir, ray=args.ray, ray_address=args.ray_address,
                              gpus_per_trial=args.gpus_per_trial)
        study = Study(spec, args.runs_dir, backend)
        try:
            study.start()
            rows = study.wait(on_change=show)
        except KeyboardInterrupt:
            if hasattr(backend, "interrupt"):  # Ray: its tasks end with this driver, so stop them
                stopped = backend.interrupt("the sweep was stopped (Ctrl-C); run the same command "
                                            "again to resume from the last checkpoint")
                print(f"\nstopped study {spec.id}: {len(stopped)} unfinished trial(s) left "
                      f"interrupted; run the same command again to resume them", file=sys.stderr)
            else:
                print(f"\nstopped watching study {spec.id}; its trials go on in the background; "
                      f"run the same command again to pick it up", file=sys.stderr)
            return 130
        finally:
            getattr(backend, "close", lambda: None)()
    trials = [{"id": r["id"], "point": r["point"], "seed": r["seed"], "state": r["state"],
               **({"error": r["error"]} if r.get("error") else {})} for r in rows]
    if args.json:
        _print_json({"study": spec.id, "runs_dir": str(study.runs_dir), "trials": trials})
    else:
        for t in trials:
            point = " ".join(f"{k}={v}" for k, v in t["point"].items())
            print(f"{t['id']:<44} {point} seed={t['seed']} {t['state']}")
    return 0 if all(t["state"] == "done" for t in trials) else 1


def cmd_worker(args) -> int:
    from aelab.runs.local import worker_main
    from aelab.runs.refs import RunRef

    return worker_main(RunRef.checked(args.run_dir, args.runs_dir), resume=args.resume)


def cmd_supervise(args) -> int:
    from aelab.runs.local import supervise

    supervise(args.runs_dir, max_parallel=args.max_parallel, lock_fd=args.lock_fd)
    return 0


def cmd_demo_runs(args) -> int:
    from aelab.training.demo_runs import DEMOS, make_demo_runs

    unknown = [n for n in args.names if n not in DEMOS]
    if unknown:
        raise AelabError(f"unknown demo run {unknown[0]!r}; choose from: {', '.join(DEMOS)}")
    for run_dir in make_demo_runs(args.runs_dir, args.names or None):
        print(run_dir)
    return 0


def cmd_disentangle(args) -> int:
    from aelab.metrics.disentanglement import REFERENCE_ENCODERS, format_scores, scorable_run, score_encoder, score_run
    from aelab.metrics.results import get_disentanglement

    if (args.run is None) == (args.encoder is None):
        raise AelabError(f"disentangle needs exactly one of a run (folder or id) or --encoder "
                         f"{'|'.join(REFERENCE_ENCODERS)}")
    from aelab.runs.refs import RunRef

    if args.unpruned and args.run is None:
        raise AelabError("--unpruned needs a run: reference encoders have nothing pruned")
    if args.encoder:
        scores = score_encoder(args.encoder)
    elif args.unpruned:  # not cached: the run's own scores are those of its pruned model
        scores = score_run(RunRef.checked(args.run, args.runs_dir, anywhere=True), unpruned=True)
    else:
        scores = get_disentanglement(scorable_run(RunRef.checked(args.run, args.runs_dir, anywhere=True)))
    print(json.dumps(scores) if args.json else format_scores(scores))
    return 0


def cmd_latent_scores(args) -> int:
    """The Latent space page's score table of a run, cached in its folder (started in the
    background by the page, see aelab.metrics.background)."""
    from aelab.metrics.results import get_latent_scores
    from aelab.runs.refs import RunRef

    rows = get_latent_scores(RunRef.checked(args.run, args.runs_dir, anywhere=True))
    print(json.dumps(rows) if args.json else "\n".join(json.dumps(r) for r in rows))
    return 0


def cmd_export(args) -> int:
    """A run as one HTML file that opens from disk with no server, plus the Embedding
    Projector's files (aelab.explore.export); the output folder is checked before anything
    is computed and again before writing."""
    from aelab.explore.export import check_out, export_run, file_names, write_export
    from aelab.runs.refs import RunRef

    run = RunRef.checked(args.run, args.runs_dir, anywhere=True)
    check_out(args.out, file_names(run.run_id), args.force)
    files = export_run(run, lambda message: print(f"{message}...", file=sys.stderr))  # caches, if stale
    for path in write_export(files, args.out, args.force):
        print(path)
    return 0


def cmd_tsne(args) -> int:
    """The t-SNE view of a run's cached codes with one perplexity, cached in its folder
    (started in the background by the Latent space page)."""
    from aelab.metrics.results import get_tsne
    from aelab.runs.refs import RunRef

    view = get_tsne(RunRef.checked(args.run, args.runs_dir, anywhere=True), args.perplexity)
    print(json.dumps(view.tolist()) if args.json else f"t-SNE of {len(view)} codes (perplexity {args.perplexity})")
    return 0


PRECISION_HELP = ("fp32 (default), bf16 (bfloat16 autocast, float32 weights and loss) or auto "
                  "(bf16 where it is at least 1.5x faster)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m aelab", description="aelab: autoencoders of the survey.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("variants", help="list the model variants and their parameters")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_variants)

    p = sub.add_parser("datasets", help="list datasets and whether they are available offline")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("presets", help="list the presets (ready-made settings for train)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_presets)

    p = sub.add_parser("train", help="train a variant and write a run folder")
    p.add_argument("--preset", help="start from these settings (see `presets`); the other "
                                    "flags change them")
    p.add_argument("--variant", help="required unless --preset gives it")
    p.add_argument("--dataset", help="required unless --preset gives it")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--latent-dim", type=int)
    p.add_argument("--arch")
    p.add_argument("--hidden", help="comma-separated sizes, e.g. 400,200")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", help=PRECISION_HELP)
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="a variant parameter, e.g. --param beta=4 (repeatable)")
    p.add_argument("--runs-dir", help="runs folder (default $AELAB_RUNS or ./checkpoints)")
    p.add_argument("--out", help="exact run folder to create instead of a new id")
    p.add_argument("--background", action="store_true",
                   help="queue the run in a background process and return at once")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("runs", help="list, show, cancel, resume or delete background runs")
    p.add_argument("action", choices=["list", "show", "cancel", "resume", "delete"])
    p.add_argument("run", nargs="?", help="run id, or a run folder (for show, cancel, resume, "
                                          "delete)")
    p.add_argument("--runs-dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("sweep", help="a study: train a grid of settings times seeds, each trial "
                                     "a run folder, locally or on a Ray cluster")
    p.add_argument("--variant", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--epochs", type=int)
    p.add_argument("--grid", action="append", metavar="NAME=v1,v2",
                   help="a model or training parameter and its values (repeatable; values "
                        "split on ';' instead when a value holds commas, e.g. hidden=64,32;128)")
    p.add_argument("--seeds", type=int, default=1, help="seeds 0..K-1 for every grid point")
    p.add_argument("--precision", help=PRECISION_HELP + " for every trial")
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="a fixed model or training parameter for every trial (repeatable)")
    p.add_argument("--study", help="study id (default: derived from the settings, so the same "
                                   "command picks up the same study)")
    p.add_argument("--runs-dir", help="runs folder (default $AELAB_RUNS or ./checkpoints)")
    p.add_argument("--json", action="store_true",
                   help="print the study id and every trial's run id and state at the end")
    p.add_argument("--ray", action="store_true", help="run the trials on a local Ray cluster")
    p.add_argument("--ray-address", metavar="HOST:PORT", help="run the trials on this Ray cluster")
    p.add_argument("--gpus-per-trial", type=float, default=0.0,
                   help="with Ray: GPUs each trial asks for (default 0: one CPU)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("demo-runs", help="(re)make the small demo runs shipped in checkpoints/")
    p.add_argument("names", nargs="*", help="only these demo runs (default: all)")
    p.add_argument("--runs-dir", help="where to write them (default ./checkpoints)")
    p.set_defaults(func=cmd_demo_runs)

    p = sub.add_parser("worker", help=argparse.SUPPRESS)  # started by the supervisor
    p.add_argument("run_dir", help="run id (or its folder inside the runs folder)")
    p.add_argument("--runs-dir")
    p.add_argument("--resume", action="store_true")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("supervise", help=argparse.SUPPRESS)  # started on demand by submit
    p.add_argument("--runs-dir", required=True)
    p.add_argument("--max-parallel", type=int, default=1)
    p.add_argument("--lock-fd", type=int)
    p.set_defaults(func=cmd_supervise)

    p = sub.add_parser("evaluate", help="metrics of a trained run on held-out data")
    p.add_argument("run", help="run id, or a run folder (in the runs folder or made by "
                                "train --out)")
    p.add_argument("--dataset", help="evaluate on this dataset instead of the run's own")
    p.add_argument("--runs-dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("disentangle", help="disentanglement metrics of a run trained on shapes, "
                                           "or of a reference encoder")
    p.add_argument("run", nargs="?", help="run id, or a run folder (one made by train --out too), "
                                          "trained on shapes")
    p.add_argument("--encoder", metavar="ground-truth|mixed|noise",
                   help="score a reference encoder of the true factors instead of a run")
    p.add_argument("--unpruned", action="store_true",
                   help="score the run with its pruned latents given back (not cached): what "
                        "pruning collapsed latents changed")
    p.add_argument("--runs-dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_disentangle)
    p = sub.add_parser("latent-scores", help="5-NN, linear-probe and trustworthiness scores of a "
                                             "run's codes against PCA and pixels (cached)")
    p.add_argument("run", help="run id, or a run folder (in the runs folder or made by "
                                "train --out)")
    p.add_argument("--runs-dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_latent_scores)

    p = sub.add_parser("export", help="a run to take home: one HTML file that opens with no "
                                      "server (decoder, sliders, code map), plus the Embedding "
                                      "Projector's vectors.tsv, metadata.tsv and sprite")
    p.add_argument("run", help="run id, or a run folder (in the runs folder or made by "
                                "train --out)")
    p.add_argument("--out", required=True, help="folder to write the files into (made if missing)")
    p.add_argument("--force", action="store_true",
                   help="replace the files of an earlier export in --out (nothing else is touched)")
    p.add_argument("--runs-dir")
    p.set_defaults(func=cmd_export)

    from aelab.runs.folder import TSNE_PERPLEXITIES

    p = sub.add_parser("tsne", help="t-SNE view of a run's cached codes (scikit-learn; cached)")
    p.add_argument("run", help="run id, or a run folder (in the runs folder or made by "
                                "train --out)")
    p.add_argument("--perplexity", type=int, default=30, choices=TSNE_PERPLEXITIES)
    p.add_argument("--runs-dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tsne)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m aelab``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except AelabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the disk or the file system said no: one sentence, no traceback
        from aelab.runs.folder import os_error_reason

        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {os_error_reason(exc)}{where}", file=sys.stderr)
        return 2
