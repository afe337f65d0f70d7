"""The ``pgen`` command.

    pgen train vae --data digits --epochs 50 --latent-dim 2 --out runs/vae
    pgen train --resume runs/vae [--epochs 80]   (train to 80 epochs in total)
    pgen sample runs/vae -n 64
    pgen evaluate runs/vae --num-samples 1000
    pgen demo [--out runs/demo]
    pgen teach TOPIC|all [--out docs/derivations]   (pgen teach --help lists the topics)

Model flags are generated from the model class's constructor (``--latent-dim`` is
``latent_dim=``); fit flags are ``pgen.fit``'s arguments. The resolved configuration is
saved in the run folder's ``config.json``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import types
import typing
from typing import Literal, get_args, get_origin

__all__ = ["main", "build_parser"]


def _model_flag(parser, name, param, hint, prefix="model"):
    flag = "--" + name.replace("_", "-")
    kwargs: dict = {"dest": f"{prefix}__{name}", "default": argparse.SUPPRESS}
    default = param.default
    shown = "" if default is inspect.Parameter.empty else f" (default {default})"
    origin, args = get_origin(hint), get_args(hint)
    if hint is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif hint in (int, float, str):
        kwargs.update(type=hint, metavar=name.upper())
    elif origin is tuple:
        kwargs.update(nargs="*", type=args[0], metavar="N")
    elif origin is Literal:
        kwargs["choices"] = list(args)
    elif origin in (typing.Union, types.UnionType) and any(get_origin(a) in (tuple, list) for a in args):
        inner = next(get_args(a)[0] for a in args if get_origin(a) in (tuple, list))
        kwargs.update(nargs="+", type=inner, metavar="N")
    elif origin in (typing.Union, types.UnionType):
        literals = [a for arg in args if get_origin(arg) is Literal for a in get_args(arg)]
        numeric = [arg for arg in args if arg in (int, float)]

        def parse(text, literals=tuple(literals), numeric=tuple(numeric)):
            if text in literals:
                return text
            for kind in numeric:
                try:
                    return kind(text)
                except ValueError:
                    pass
            raise argparse.ArgumentTypeError(f"expected a number or one of {list(literals)}, got {text!r}")

        kwargs.update(type=parse, metavar="|".join([*(t.__name__ for t in numeric), *literals]))
    else:
        kwargs.update(type=str, metavar=name.upper())
    parser.add_argument(flag, help=f"{name}{shown}", **kwargs)


# constructor arguments the fit flags stand for: --objective is the score model's objective
_SHARED_FLAGS = ("objective",)


def _add_model_flags(parser, spec):
    import torch

    hints = typing.get_type_hints(spec.cls.__init__)
    data_args = spec.data_args(torch.zeros(1, 4), None)
    group = parser.add_argument_group(f"{spec.name} arguments ({spec.cls.__name__})")
    for name, param in inspect.signature(spec.cls.__init__).parameters.items():
        if name in ("self", *_SHARED_FLAGS) or name in data_args:
            continue
        if param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        _model_flag(group, name, param, hints.get(name, str))
    method = getattr(spec.cls, "contrastive_divergence", None)
    if method is not None:  # energy models: the objective's own settings
        cd = parser.add_argument_group(
            f"contrastive divergence ({spec.cls.__name__}.contrastive_divergence; replaces --objective)"
        )
        cd_hints = typing.get_type_hints(method)
        for name, param in inspect.signature(method).parameters.items():
            if name != "self":
                _model_flag(cd, name, param, cd_hints.get(name, str), prefix="cd")


def _add_fit_flags(parser):
    from .inference.elbo import OBJECTIVES
    from .models.score import SCORE_OBJECTIVES

    g = parser.add_argument_group("training (pgen.fit)")
    g.add_argument("--epochs", type=int, help="passes over the data (default 50)")
    g.add_argument("--steps", type=int, help="optimizer steps instead of epochs")
    g.add_argument("--batch-size", type=int, default=128)
    g.add_argument("--lr", type=float, default=1e-3)
    g.add_argument("--optimizer", default="adam", choices=["adam", "adamw", "sgd", "rmsprop"])
    g.add_argument("--clip-norm", type=float)
    g.add_argument(
        "--objective",
        choices=[*OBJECTIVES, "simple", *SCORE_OBJECTIVES],
        help="default: the model's own (enum for ssvae, which sums its labels out; meanfield for "
        "diffusion), else elbo. For diffusion, elbo|simple choose the model's loss: the "
        "timestep-sampled ELBO or Ho et al.'s simplified loss, both with closed-form KLs. For "
        "score, exact|sliced|denoising score matching (default denoising). rbm and ebm train "
        "by contrastive divergence (--method cd|pcd)",
    )
    g.add_argument("--num-particles", type=int)
    g.add_argument("--alpha", type=float, help="the Renyi alpha (objective renyi)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--patience", type=int, help="early stopping (needs --val-fraction)")
    g.add_argument("--checkpoint-every", type=int, default=1)
    g.add_argument(
        "--jit",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="compile the objective with torch.jit.trace (static models)",
    )


def _add_data_flags(parser):
    from . import data
    from .runs import BINARIZE

    g = parser.add_argument_group("data")
    g.add_argument("--data", default="digits", choices=data.names())
    g.add_argument("--data-path", help="for --data mnist: directory of IDX files or an .npz")
    g.add_argument(
        "--binarize",
        choices=BINARIZE,
        help="images: threshold at 0.5 (default; dequantize for diffusion), static or dynamic "
        "Bernoulli draws, uniform dequantization (k + u) / levels, or none",
    )
    g.add_argument("--data-seed", type=int, default=0, help="seed of toy data and static binarization")
    g.add_argument("--val-fraction", type=float, default=0.0, help="hold out this share of train")
    g.add_argument("--n", type=int, help="toy data: number of points")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .models import registry

    parser = argparse.ArgumentParser(
        prog="pgen",
        description="Generative models as Pyro model/guide pairs: train, sample, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"pgen {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a model into a run folder, or resume one")
    train.add_argument("--resume", metavar="RUN", help="continue the run in folder RUN from its checkpoint")
    train.add_argument(
        "--epochs",
        dest="resume_epochs",
        type=int,
        metavar="N",
        help="with --resume: train to N epochs in total",
    )
    train.add_argument("--no-progress", action="store_true")
    models = train.add_subparsers(dest="model", metavar="MODEL", title="models")
    for name in registry.names():
        spec = registry.get(name)
        sub = models.add_parser(name, help=(spec.cls.__doc__ or "").strip().splitlines()[0])
        _add_model_flags(sub, spec)
        _add_data_flags(sub)
        _add_fit_flags(sub)
        sub.add_argument("--out", help=f"run folder (default runs/{name})")
        sub.add_argument("--no-figures", action="store_true")
        sub.add_argument("--no-progress", action="store_true", dest="no_progress_model")

    sample = commands.add_parser("sample", help="draw samples from a trained run")
    sample.add_argument("run")
    sample.add_argument("-n", type=int, default=64)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", help="figure path (default RUN/samples.png; values go to .npz beside it)")
    sample.add_argument(
        "--sampler", choices=["ddpm", "ddim"], help="diffusion runs: the sampler (default ddpm)"
    )
    sample.add_argument(
        "--steps",
        type=int,
        help="diffusion with --sampler ddim: the number of steps; rbm: Gibbs sweeps (default 1000); "
        "ebm: Langevin steps (500); score: annealed Langevin steps per noise level (100)",
    )

    evaluate = commands.add_parser("evaluate", help="test ELBO, IS log-likelihood, bits/dim -> metrics.json")
    evaluate.add_argument("run")
    evaluate.add_argument(
        "--num-samples", type=int, default=1000, help="importance samples per example (rbm: AIS chains)"
    )
    evaluate.add_argument(
        "--ais-betas", type=int, default=10000, help="rbm: intermediate distributions of AIS (default 10000)"
    )
    evaluate.add_argument(
        "--raise-betas",
        type=int,
        default=0,
        help="rbm: also reverse AIS (RAISE) from each example with this many distributions: a "
        "conservative log-likelihood, the other side of AIS's bracket (default 0: skip)",
    )
    evaluate.add_argument("--split", default="test", choices=["train", "test"])
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--batch-size", type=int, default=100)
    evaluate.add_argument("--no-progress", action="store_true")

    from .models.bayes import PROBLEMS

    cmp = commands.add_parser("compare", help="VI vs MCMC on one Bayesian model, against a reference")
    cmp.add_argument("problem", choices=PROBLEMS, help="the model and its data")
    cmp.add_argument("--methods", default="nuts,meanfield,fullrank,flow", help="comma-separated")
    cmp.add_argument(
        "--reference", default=None, help="nuts or exact (default: exact where known, else nuts)"
    )
    cmp.add_argument("--out", help="folder for the tables and figures (default runs/compare-PROBLEM)")
    cmp.add_argument("--seed", type=int, default=0)
    cmp.add_argument("--chains", type=int, default=4)
    cmp.add_argument("--warmup", type=int, default=500)
    cmp.add_argument("--draws", type=int, default=1000)
    cmp.add_argument("--steps", type=int, default=3000, help="SVI steps per guide")
    cmp.add_argument("--reference-draws", type=int, default=2500, help="draws per chain of a NUTS reference")
    cmp.add_argument("--no-progress", action="store_true")

    teach = commands.add_parser("teach", help="draw a derivation's figure (docs/derivations.md)")
    from .teach.figures import TOPICS

    teach.add_argument("topic", choices=[*TOPICS, "all"])
    teach.add_argument("--out", default="docs/derivations", help="folder for the PNGs")
    teach.add_argument("--seed", type=int, default=0)
    teach.add_argument("--quick", action="store_true", help="fewer steps and samples (for a smoke test)")

    demo = commands.add_parser("demo", help="the main job: a VAE on real MNIST digits, end to end")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--data", default="mnist5k", choices=["mnist5k", "digits"])
    demo.add_argument("--epochs", type=int, default=100)
    demo.add_argument("--latent2d-epochs", type=int, default=30)
    demo.add_argument("--num-samples", type=int, default=1000)
    demo.add_argument("--no-progress", action="store_true")
    return parser


def _fit_args(args) -> dict:
    fit = {
        "batch_size": args.batch_size,
        "lr": args.lr,
        "optimizer": args.optimizer,
        "seed": args.seed,
        "checkpoint_every": args.checkpoint_every,
        "jit": args.jit,
    }
    for key in ("objective", "epochs", "steps", "clip_norm", "num_particles", "alpha", "patience"):
        value = getattr(args, key)
        if value is not None:
            fit[key] = value
    if "epochs" not in fit and "steps" not in fit:
        fit["epochs"] = 50
    return fit


def _objective_routing(args, model_args: dict, fit_args: dict) -> tuple[dict, dict | None]:
    """Where ``--objective`` goes: the engine's objective, or a model's own loss (diffusion:
    elbo|simple; score: exact|sliced|denoising); energy models train by contrastive
    divergence, configured by their ``--method``/``--k``/... flags."""
    from .models import registry
    from .models.score import SCORE_OBJECTIVES

    cls = registry.get(args.model).cls
    ctor = inspect.signature(cls.__init__).parameters
    objective = args.objective
    cd_args = {k[len("cd__") :]: v for k, v in vars(args).items() if k.startswith("cd__")}
    if hasattr(cls, "contrastive_divergence"):
        if objective is not None:
            raise ValueError(
                f"{args.model} trains by contrastive divergence: choose --method cd|pcd (and --k), "
                f"not --objective {objective}"
            )
        return model_args, cd_args
    if "objective" in ctor:  # the score model: --objective is its score-matching objective
        if objective is not None:
            if objective not in SCORE_OBJECTIVES:
                raise ValueError(
                    f"--objective for {args.model} is one of {list(SCORE_OBJECTIVES)}; got {objective!r}"
                )
            model_args["objective"] = fit_args.pop("objective")
        return model_args, None
    if "loss" in ctor and objective is not None:
        # diffusion: --objective elbo|simple is the model's loss; the engine keeps its own objective
        if objective not in ("elbo", "simple"):
            raise ValueError(f"--objective for {args.model} is elbo or simple; got {objective!r}")
        model_args["loss"] = fit_args.pop("objective")
    elif objective == "simple" or objective in SCORE_OBJECTIVES:
        raise ValueError(f"--objective {objective} is another model's loss; {args.model} has no such loss")
    return model_args, None


def _print_metrics(m: dict) -> None:
    if m.get("score_matching") is not None:
        print(
            f"{m['split']} {m['objective']} score-matching loss {m['score_matching']:.4f} +- "
            f"{m['score_matching_se']:.4f}; samples' mean distance to the nearest {m['split']} point "
            f"{m['sample_nearest_distance']:.4f} (training points: {m['reference_nearest_distance']:.4f})"
        )
        return
    if m.get("log_z_method") is not None:
        bpd = "" if m["bits_per_dim"] is None else f", {m['bits_per_dim']:.4f} bits/dim"
        print(
            f"{m['split']} log-likelihood {m['log_likelihood']:.2f} +- {m['log_likelihood_se']:.2f} "
            f"nats{bpd}; "
            f"log Z {m['log_z']:.2f} +- {m['log_z_se']:.2f} by {m['log_z_method']} ({m['n']} examples)"
        )
        if m.get("raise_log_likelihood") is not None:
            print(
                f"{m['split']} log-likelihood by reverse AIS (conservative, {m['raise_betas']} betas): "
                f"{m['raise_log_likelihood']:.2f} +- {m['raise_log_likelihood_se']:.2f} nats"
            )
        return
    bpd = "" if m["bits_per_dim"] is None else f", {m['bits_per_dim']:.4f} bits/dim"
    if m.get("log_likelihood") is None:  # a bound only (diffusion)
        bound = "" if m["bits_per_dim"] is None else f" <= {m['bits_per_dim']:.4f} bits/dim"
        print(f"{m['split']} ELBO {m['elbo']:.2f} +- {m['elbo_se']:.2f} nats{bound} ({m['n']} examples)")
        return
    what = "conditional IS log-likelihood log p(x|y)" if m.get("conditional") else "IS log-likelihood"
    print(
        f"{m['split']} ELBO {m['elbo']:.2f} +- {m['elbo_se']:.2f} nats; {what} "
        f"(K={m['num_samples']}) {m['log_likelihood']:.2f} +- {m['log_likelihood_se']:.2f} "
        f"nats{bpd} "
        f"({m['n']} examples)"
    )
    if m.get("accuracy") is not None:
        print(f"{m['split']} accuracy of the classifier q(y|x): {m['accuracy']:.4f}")


def _train(args) -> None:
    from . import data, runs
    from .models import registry

    if args.resume:
        if args.model is not None:
            raise ValueError("give either --resume RUN or a model to train, not both")
        m, result = runs.resume(args.resume, epochs=args.resume_epochs, progress=not args.no_progress)
        out = args.resume
    else:
        if args.model is None:
            raise ValueError("name a model to train (e.g. `pgen train vae`) or give --resume RUN")
        if args.resume_epochs is not None:
            raise ValueError("--epochs before the model name goes with --resume")
        model_args = {k[len("model__") :]: v for k, v in vars(args).items() if k.startswith("model__")}
        for key in ("hidden", "channels", "made_hidden"):
            if isinstance(model_args.get(key), (tuple, list)):
                model_args[key] = list(model_args[key])
        fit_args = _fit_args(args)
        model_args, objective_args = _objective_routing(args, model_args, fit_args)
        binarize = args.binarize
        if binarize is None and data.info(args.data).kind == "image":
            binarize = getattr(registry.get(args.model).cls, "data_binarize", None)
        data_cfg = runs.data_config(
            args.data,
            path=args.data_path,
            binarize=binarize,
            seed=args.data_seed,
            val_fraction=args.val_fraction,
            n=args.n,
        )
        out = args.out or f"runs/{args.model}"
        m, result = runs.train(
            out,
            model=args.model,
            model_args=model_args,
            objective_args=objective_args,
            data_cfg=data_cfg,
            fit_args=fit_args,
            progress=not (args.no_progress or args.no_progress_model),
            figures=not args.no_figures,
        )
    h = result.history
    val = h["val_elbo"][-1] if h["val_elbo"] and h["val_elbo"][-1] is not None else None
    if hasattr(m, "contrastive_divergence"):
        what = "train contrastive gap (mean log p~ of the data minus that of the chains)"
    elif hasattr(m, "sampler"):
        what = "train objective (minus the sigma^2-weighted score-matching loss, per example)"
    elif getattr(m, "config", {}).get("loss") == "simple":
        what = "train objective (minus the simple loss)"
    else:
        what = "train ELBO"
    unit = "" if hasattr(m, "sampler") else " nats/example"
    print(
        f"{result.message}; {what} {h['train_elbo'][-1]:.2f}{unit}"
        + ("" if val is None else f", validation {val:.2f}")
        + f"; {result.wall_time:.1f} s. Run folder: {out}"
    )


def _demo(args) -> None:
    from . import runs

    results = runs.demo(
        args.out,
        data_name=args.data,
        epochs=args.epochs,
        latent2d_epochs=args.latent2d_epochs,
        num_samples=args.num_samples,
        progress=not args.no_progress,
    )
    main, flat = results["vae"], results["vae_2d"]
    print(f"\npgen demo: a VAE (784-400-20, Bernoulli) on {main['data']}, {args.epochs} epochs")
    _print_metrics(main)
    print(
        f"2-D latent VAE: test ELBO {flat['elbo']:.2f}, IS log-likelihood {flat['log_likelihood']:.2f} nats"
    )
    print(f"figures and metrics.json in {args.out} (2-D latent space in {args.out}/latent2d)")


def _compare(args) -> None:
    from pathlib import Path

    from . import plot
    from .inference.compare import compare
    from .models.bayes import problem

    pr = problem(args.problem, seed=args.seed)
    reference = args.reference or ("exact" if pr.exact is not None else "nuts")
    if args.problem == "eight_schools" and reference == "nuts":
        # NUTS on the centred funnel is itself biased (divergences): the reference comes
        # from the same posterior in its non-centred form, mapped to (mu, tau, theta)
        import warnings

        from . import sample

        nc = problem("eight_schools_noncentered")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            run = sample(
                nc.model,
                *nc.args,
                chains=4,
                warmup=1000,
                draws=args.reference_draws,
                seed=args.seed + 1000,
                jit=True,
                progress=not args.no_progress,
                log_likelihood=False,
                **nc.kwargs,
            )
        reference = {k: run.draws_of(k) for k in ("mu", "tau", "theta")}
        reference_label = (
            f"NUTS on the non-centred form, 4 chains x {args.reference_draws} draws "
            f"(min bulk ESS {run.min_ess_bulk:.0f}, {run.divergences} divergences)"
        )
    else:
        reference_label = None
    out = Path(args.out or f"runs/compare-{args.problem}")
    out.mkdir(parents=True, exist_ok=True)
    result = compare(
        pr.model,
        *pr.args,
        methods=args.methods,
        reference=reference,
        seed=args.seed,
        exact=pr.exact,
        chains=args.chains,
        warmup=args.warmup,
        draws=args.draws,
        steps=args.steps,
        reference_options={"draws": args.reference_draws},
        progress=not args.no_progress,
        **pr.kwargs,
    )
    if reference_label is not None:
        result.reference = reference_label
    result.to_csv(out / "table.csv")
    (out / "table.md").write_text(
        f"{pr.description}; reference: {result.reference}\n\n{result.to_markdown()}\n"
    )
    plot.save(plot.plot_marginals(result), out / "marginals.png")
    if len(result.draws["reference"]) >= 2:
        plot.save(plot.plot_pair(result), out / "pairs.png")
    plot.save(plot.plot_error_vs_time(result), out / "error_vs_time.png")
    print(f"{pr.description}; reference: {result.reference}")
    print(result.to_markdown())
    for method, error in result.errors.items():
        print(f"{method} failed: {error}")
    print(f"tables (table.csv, table_parameters.csv, table.md) and figures in {out}")


def main(argv: list[str] | None = None) -> int:
    import matplotlib

    matplotlib.use("Agg")  # the CLI only writes PNG files
    parser = build_parser()
    args = parser.parse_args(argv)
    from .inference import NonFiniteLossError
    from .io import CheckpointError

    try:
        if args.command == "train":
            _train(args)
        elif args.command == "sample":
            from . import runs

            options = {k: v for k, v in (("sampler", args.sampler), ("steps", args.steps)) if v is not None}
            draws = runs.sample(args.run, n=args.n, seed=args.seed, out=args.out, **options)
            shape = "x".join(str(s) for s in draws.shape)
            print(f"samples ({shape}) written to {args.out or args.run + '/samples.png'} (and .npz)")
        elif args.command == "evaluate":
            from . import runs

            metrics = runs.evaluate(
                args.run,
                num_samples=args.num_samples,
                split=args.split,
                seed=args.seed,
                batch_size=args.batch_size,
                progress=not args.no_progress,
                ais_betas=args.ais_betas,
                raise_betas=args.raise_betas,
            )
            _print_metrics(metrics)
            print(f"written to {args.run}/metrics.json")
            print(json.dumps(metrics, indent=2))
        elif args.command == "compare":
            _compare(args)
        elif args.command == "teach":
            from .teach.figures import make_figure

            make_figure(args.topic, args.out, seed=args.seed, quick=args.quick)
            print(f"figures in {args.out}")
        elif args.command == "demo":
            _demo(args)
    except KeyboardInterrupt as stop:
        print(f"\npgen: interrupted. {stop}", file=sys.stderr)
        return 130
    except NonFiniteLossError as error:
        print(f"pgen: training stopped: {error}", file=sys.stderr)
        return 1
    except (
        ValueError,
        TypeError,
        FileNotFoundError,
        FileExistsError,
        CheckpointError,
        ImportError,
    ) as error:
        print(f"pgen: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
