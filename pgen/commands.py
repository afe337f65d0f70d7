"""What each ``pgen`` command does with its parsed arguments: call the run layer and
print a short summary (full results go to files). Errors are printed as one line and
become exit codes: 2 for bad input or files, 1 for a training that went non-finite or
a ``compare`` method that failed (its table is still written), 130 or 143 for Ctrl-C or
SIGTERM (after the run saved what it had)."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["run_command", "EXIT_ERROR"]

EXIT_ERROR = 2


def _prefixed(args, prefix: str) -> dict:
    return {k[len(prefix) + 2 :]: v for k, v in vars(args).items() if k.startswith(prefix + "__")}


def _given(args, names) -> dict:
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _train(args) -> None:
    from . import data, families, runs
    from .models import registry

    if getattr(args, "model", None) is None:
        raise ValueError("name a model to train (e.g. `pgen train vae`) or give --resume RUN")
    family = families.of_model(args.model)
    model_args = {k: list(v) if isinstance(v, tuple) else v for k, v in _prefixed(args, "model").items()}
    given = _given(args, runs.DATA_FLAGS)
    data_cfg = data.data_config(
        **{runs.DATA_FLAGS[k]: v for k, v in given.items()}, default_binarize=family.image_data
    )
    out = getattr(args, "out", runs.default_folder(args.model))
    m, result = runs.train(
        out,
        model=registry.get(args.model).name,
        model_args=model_args,
        objective_args=_prefixed(args, "objective"),
        data_cfg=data_cfg,
        fit_args=_given(args, runs.FIT_KEYS),
        progress=not getattr(args, "no_progress", False),
        figures=not getattr(args, "no_figures", False),
        device=getattr(args, "device", None),
    )
    _print_trained(family, m, result, out)


def _resume(args) -> None:
    from . import families, runs

    extra = sorted(
        k
        for k in vars(args)
        if k not in {"epochs", "steps", "no_progress", "no_figures", "resume", "command", "model", "device"}
    )
    if extra:
        flags = ", ".join("--" + k.replace("_", "-") for k in extra)
        raise ValueError(
            f"{flags} cannot change when resuming: a resumed run repeats the settings it was started with "
            f"({args.resume}/config.json); only --epochs or --steps (the total to train to) may be given"
        )
    cfg = runs.read_config(args.resume)
    if getattr(args, "model", None) is not None and args.model != cfg["model"]:
        raise ValueError(f"{args.resume} holds a {cfg['model']} run, not {args.model}")
    m, result = runs.resume(
        args.resume,
        epochs=getattr(args, "epochs", None),
        steps=getattr(args, "steps", None),
        progress=not getattr(args, "no_progress", False),
        figures=not getattr(args, "no_figures", False),
        device=getattr(args, "device", None),
    )
    _print_trained(families.of_model(cfg["model"]), m, result, args.resume)


def _print_trained(family, m, result, out) -> None:
    from .inference.svi.distributed import current_group

    group = current_group()
    if group is not None and not group.is_main:
        return  # rank 0 reports for a data-parallel job
    h = result.history
    val = h["val_elbo"][-1] if h["val_elbo"] and h["val_elbo"][-1] is not None else None
    print(
        f"{result.message}; {family.train_summary(m, h)}"
        + ("" if val is None else f", validation {val:.2f}")
        + f"; {result.wall_time:.1f} s. Run folder: {out}"
    )


def _evaluate(args) -> None:
    from . import families, runs

    options = {k: v for k, v in vars(args).items() if k in _family_option_names("evaluate_options")}
    try:
        metrics = runs.evaluate(
            args.run,
            num_samples=args.num_samples,
            split=args.split,
            seed=args.seed,
            batch_size=args.batch_size,
            progress=not args.no_progress,
            checkpoint=args.checkpoint,
            device=args.device,
            quality=args.quality,
            **options,
        )
    except runs.MetricsNotWritten as error:
        for line in families.get(error.metrics["family"]).summary(error.metrics):
            print(line)
        raise
    for line in families.get(metrics["family"]).summary(metrics):
        print(line)
    if args.quality and "quality" in metrics:
        q = metrics["quality"]
        print(
            f"{q['n']} samples on the features of the {q['features']}: Frechet distance "
            f"{q['frechet_distance']:.2f}, IS {q['inception_score']:.2f}, precision {q['precision']:.3f}, "
            f"recall {q['recall']:.3f}, density {q['density']:.3f}, coverage {q['coverage']:.3f}, "
            f"memorization ratio {q['memorization_ratio']:.2f}"
            + (
                f", classification accuracy score {q['classification_accuracy_score']:.3f}"
                if "classification_accuracy_score" in q
                else ""
            )
        )
    if metrics.get("from_checkpoint"):
        print("(the model of the run's last checkpoint: its training was interrupted)")
    print(f"all metrics in {Path(args.run) / 'metrics.json'}")


def _family_option_names(declared: str) -> set[str]:
    from . import families

    return {o.name for name in families.names() for o in getattr(families.get(name), declared)}


def _sample(args) -> None:
    from . import runs

    options = {k: v for k, v in vars(args).items() if k in _family_option_names("sample_options")}
    draws = runs.sample(
        args.run,
        n=args.n,
        seed=args.seed,
        out=args.out,
        checkpoint=args.checkpoint,
        device=args.device,
        **options,
    )
    shape = "x".join(str(s) for s in draws.shape)
    out = Path(args.out) if args.out else Path(args.run) / "samples.png"
    print(f"samples ({shape}) written to {out} (values in {out.with_suffix('.npz')})")


def _compare(args) -> int:
    from .runs.compare import compare_problem

    result, out, description = compare_problem(
        args.problem,
        out=args.out,
        methods=args.methods,
        reference=args.reference,
        seed=args.seed,
        chains=args.chains,
        warmup=args.warmup,
        draws=args.draws,
        steps=args.steps,
        guide_init=args.guide_init,
        reference_draws=args.reference_draws,
        device=args.device,
        progress=not args.no_progress,
    )
    print(f"{description}; reference: {result.reference}")
    print(result.to_markdown())
    print(f"tables (table.csv, table_parameters.csv, table.md) and figures in {out}")
    for method, error in result.errors.items():
        print(f"pgen: {method} failed: {error}", file=sys.stderr)
    return 1 if result.errors else 0


def _teach(args) -> None:
    from .teach.figures import make_figure

    make_figure(args.topic, args.out, seed=args.seed, quick=args.quick)
    print(f"figures in {args.out}")


def _demo(args) -> None:
    from . import families, runs

    results = runs.demo(
        args.out,
        data_name=args.data,
        epochs=args.epochs,
        latent2d_epochs=args.latent2d_epochs,
        num_samples=args.num_samples,
        progress=not args.no_progress,
        device=args.device,
    )
    main, flat = results["vae"], results["vae_2d"]
    print(f"\npgen demo: a VAE (784-400-20, Bernoulli) on {main['data']}, {args.epochs} epochs")
    for line in families.get("latent").summary(main):
        print(line)
    print(
        f"2-D latent VAE: test ELBO {flat['elbo']:.2f}, IS log-likelihood {flat['log_likelihood']:.2f} nats"
    )
    print(f"figures and metrics.json in {args.out} (2-D latent space in {args.out}/latent2d)")


_COMMANDS = {
    "sample": _sample,
    "evaluate": _evaluate,
    "compare": _compare,
    "teach": _teach,
    "demo": _demo,
}


def run_command(args) -> int:
    """Run a parsed command; its exit code."""
    from .inference import NonFiniteLossError
    from .inference.svi import Interrupted

    if args.command == "train":
        command = _resume if getattr(args, "resume", None) else _train
    else:
        command = _COMMANDS[args.command]
    try:
        code = command(args)
    except Interrupted as stop:
        print(f"\npgen: interrupted. {stop}", file=sys.stderr)
        return 128 + int(stop.signal)
    except KeyboardInterrupt as stop:
        print(f"\npgen: interrupted. {stop}", file=sys.stderr)
        return 130
    except NonFiniteLossError as error:
        print(f"pgen: training stopped: {error}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, OSError, ImportError) as error:
        print(f"pgen: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    return code or 0
