"""The ``pgen`` command: argument parsing only; the work is done by :mod:`pgen.runs`.

    pgen train vae --data digits --epochs 50 --latent-dim 2 --out runs/vae
    pgen train --resume runs/vae [--epochs 80]   (train to 80 epochs in total)
    pgen sample runs/vae -n 64
    pgen evaluate runs/vae --num-samples 1000
    pgen compare logreg --methods nuts,meanfield
    pgen demo [--out runs/demo]
    pgen teach TOPIC|all [--out runs/teach]   (pgen teach --help lists the topics)

Every flag is declared elsewhere, once: a model's flags are its constructor's arguments
(``--latent-dim`` is ``latent_dim=``, documented by the class docstring), its family
adds its own (:mod:`pgen.families`), and the training and data flags are the run layer's
(:func:`pgen.runs.options.fit_options`, :func:`pgen.runs.options.data_options`).
"""

from __future__ import annotations

import argparse
import difflib
import os
import signal
import sys

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """An argument parser that suggests the closest flag for a typo."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def unknown(self, extras: list[str]):
        known = [s for action in self._actions for s in action.option_strings]
        flags = [e for e in extras if e.startswith("-")]
        if flags:
            close = difflib.get_close_matches(flags[0].split("=")[0], known, n=1)
            hint = f"; did you mean {close[0]}?" if close else f"; `{self.prog} --help` lists the flags"
            self.error(f"unrecognized argument {flags[0]}{hint}")
        self.error(f"unrecognized arguments: {' '.join(extras)}")


def _add(group, option, *, prefix: str | None = None, show_default: bool = True) -> None:
    """One declared :class:`~pgen.families.Option` as an argparse flag (given flags only
    reach the namespace: defaults stay where they are defined)."""
    kwargs: dict = {"default": argparse.SUPPRESS}
    if prefix:
        kwargs["dest"] = f"{prefix}__{option.name}"
    help_text = option.help or option.name.replace("_", " ")
    if show_default and option.default is not None:
        shown = option.default
        if isinstance(shown, (tuple, list)):
            shown = " ".join(map(str, shown))
        help_text += f" (default: {shown})"
    if option.type is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    else:
        kwargs["type"] = option.type
        if option.many:
            kwargs["nargs"] = "+"
        if option.choices:
            kwargs["choices"] = list(option.choices)
        elif option.metavar:
            kwargs["metavar"] = option.metavar
    flags = [option.flag, *_ALIASES.get(option.flag, ())]
    group.add_argument(*flags, help=help_text.replace("%", "%%"), **kwargs)


_ALIASES = {"--data-path": ("--data-dir",)}  # the name torchvision-style scripts use


def _add_train(commands) -> None:
    from . import families
    from .families.options import first_sentence
    from .models import registry
    from .runs.options import data_options, default_folder, fit_options

    train = commands.add_parser(
        "train",
        help="train a model into a run folder, or resume one",
        description="Train a model (pgen train MODEL --help lists its flags), or continue a run with "
        "pgen train --resume RUN [--epochs N | --steps N].",
    )
    _add_resume(train)
    models = train.add_subparsers(dest="model", metavar="MODEL", title="models", parser_class=_Parser)
    for name in registry.names():
        spec = registry.get(name)
        family = families.get(spec.family)
        sub = models.add_parser(
            name,
            help=f"{first_sentence(spec.cls.__doc__)} ({family.name} family)",
            description=f"{spec.cls.__name__}: {first_sentence(spec.cls.__doc__)}",
        )
        group = sub.add_argument_group(f"{name} arguments ({spec.cls.__name__})")
        for option in family.model_options(spec):
            _add(group, option, prefix="model")
        objective = family.objective_options(spec)
        if objective:
            group = sub.add_argument_group(f"objective options ({family.objective})")
            for option in objective:
                _add(group, option, prefix="objective")
        group = sub.add_argument_group("data")
        for option in data_options(family):
            _add(group, option)
        group = sub.add_argument_group("training (pgen.fit)")
        for option in fit_options(family):
            _add(group, option)
        sub.add_argument(
            "--out", help=f"run folder (default: {default_folder(name)})", default=argparse.SUPPRESS
        )
        sub.add_argument("--no-figures", action="store_true", default=argparse.SUPPRESS)
        sub.add_argument("--no-progress", action="store_true", default=argparse.SUPPRESS)
        _add_device(sub, {"default": argparse.SUPPRESS})
        sub.add_argument(
            "--resume",
            metavar="RUN",
            default=argparse.SUPPRESS,
            help="continue the run in folder RUN instead",
        )


def _add_resume(parser) -> None:
    hide = {"default": argparse.SUPPRESS}
    parser.add_argument(
        "--resume", metavar="RUN", help="continue the run in folder RUN from its checkpoint", **hide
    )
    parser.add_argument(
        "--epochs", type=int, metavar="N", help="with --resume: train to N epochs in total", **hide
    )
    parser.add_argument(
        "--steps", type=int, metavar="N", help="with --resume: train to N steps in total", **hide
    )
    parser.add_argument("--no-progress", action="store_true", **hide)
    parser.add_argument("--no-figures", action="store_true", **hide)
    _add_device(parser, hide)


_DEVICE_HELP = (
    "where to compute: cpu, cuda, cuda:N, mps or auto (a GPU where there is one); "
    "default: cpu. Not saved with the run: resume anywhere"
)


def _add_device(parser, extra=None) -> None:
    parser.add_argument("--device", metavar="DEVICE", help=_DEVICE_HELP, **(extra or {}))


def _family_flags(parser, declared: str) -> None:
    """The options of ``pgen evaluate``/``pgen sample`` that only some families take."""
    from . import families

    merged: dict = {}
    for name in families.names():
        for option in getattr(families.get(name), declared):
            merged.setdefault(option.name, []).append(option)
    group = parser.add_argument_group("options of some model families")
    for options in merged.values():
        first = options[0]
        helps = " ".join(o.help + ("" if o.default is None else f" (default: {o.default})") for o in options)
        _add(
            group, type(first)(first.name, helps, None, first.type, first.choices, first.many, first.metavar)
        )


def _add_evaluate_and_sample(commands) -> None:
    sample = commands.add_parser("sample", help="draw samples from a trained run")
    sample.add_argument("run")
    sample.add_argument(
        "-n", type=int, default=64, help="samples (per class or test image, for conditional models)"
    )
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument(
        "--out", help="figure path (default: RUN/samples.png; the values go to .npz beside it)"
    )
    sample.add_argument(
        "--checkpoint", action="store_true", help="an interrupted run: use its last checkpoint"
    )
    _family_flags(sample, "sample_options")
    _add_device(sample)
    evaluate = commands.add_parser(
        "evaluate", help="a run's test metrics -> metrics.json (ELBO, log-likelihood, bits/dim, ...)"
    )
    evaluate.add_argument("run")
    evaluate.add_argument(
        "--num-samples",
        type=int,
        default=1000,
        help="Monte Carlo size: importance samples per example (rbm: AIS chains)",
    )
    evaluate.add_argument("--split", default="test", choices=["train", "test"])
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--batch-size", type=int, default=100)
    evaluate.add_argument("--no-progress", action="store_true")
    evaluate.add_argument(
        "--quality",
        type=int,
        default=0,
        metavar="N",
        help="also draw N samples and score them against the test images: Frechet distance, "
        "Inception-Score analogue, precision/recall, density/coverage and memorization, on the "
        "features of a classifier trained on the data set (cached in runs/.features)",
    )
    evaluate.add_argument(
        "--checkpoint", action="store_true", help="an interrupted run: use its last checkpoint"
    )
    _family_flags(evaluate, "evaluate_options")
    _add_device(evaluate)


def _add_other(commands) -> None:
    from .inference.compare import METHODS
    from .models.bayes import PROBLEMS
    from .teach.figures import TOPICS

    cmp = commands.add_parser("compare", help="VI vs MCMC on one Bayesian model, against a reference")
    cmp.add_argument("problem", choices=PROBLEMS, help="the model and its data")
    cmp.add_argument(
        "--methods",
        default="nuts,meanfield,fullrank,flow",
        help=f"comma-separated, from: {', '.join(METHODS)}",
    )
    cmp.add_argument("--reference", choices=["nuts", "exact"], help="default: exact where known, else nuts")
    cmp.add_argument("--out", help="folder for the tables and figures (default: runs/compare-PROBLEM)")
    cmp.add_argument("--seed", type=int, default=0)
    cmp.add_argument("--chains", type=int, default=4, help="MCMC chains")
    cmp.add_argument("--warmup", type=int, default=500, help="MCMC warm-up draws per chain")
    cmp.add_argument("--draws", type=int, default=1000, help="MCMC draws per chain")
    cmp.add_argument("--steps", type=int, default=3000, help="SVI optimizer steps per guide")
    cmp.add_argument(
        "--guide-init",
        choices=["mode", "median"],
        default="mode",
        help="where the guides start: the posterior mode (default) or the prior medians (Pyro's)",
    )
    cmp.add_argument("--reference-draws", type=int, default=2500, help="draws per chain of a NUTS reference")
    cmp.add_argument("--no-progress", action="store_true")
    _add_device(cmp)
    teach = commands.add_parser("teach", help="draw a derivation's figures (docs/derivations.md)")
    teach.add_argument("topic", choices=[*TOPICS, "all"])
    teach.add_argument("--out", default="runs/teach", help="folder for the PNGs (default: runs/teach)")
    teach.add_argument("--seed", type=int, default=0)
    teach.add_argument("--quick", action="store_true", help="fewer steps and samples (for a smoke test)")
    demo = commands.add_parser("demo", help="the main job: a VAE on real MNIST digits, end to end")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--data", default="mnist5k", choices=["mnist5k", "digits"])
    _add_device(demo)
    demo.add_argument("--epochs", type=int, default=100)
    demo.add_argument("--latent2d-epochs", type=int, default=30)
    demo.add_argument("--num-samples", type=int, default=1000)
    demo.add_argument("--no-progress", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(
        prog="pgen", description="Generative models as Pyro model/guide pairs: train, sample, evaluate."
    )
    parser.add_argument("--version", action="version", version=f"pgen {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    _add_train(commands)
    _add_evaluate_and_sample(commands)
    _add_other(commands)
    return parser


def _resume_parser() -> _Parser:
    """``pgen train --resume RUN``: the resume flags, and every training flag so that one
    given by mistake is named rather than misread."""
    from .runs.options import data_options, fit_options

    parser = _Parser(prog="pgen train --resume")
    parser.add_argument("command")
    parser.add_argument("model", nargs="?")
    parser.add_argument("--resume", metavar="RUN", required=True)
    parser.add_argument("--no-progress", action="store_true", default=argparse.SUPPRESS)
    parser.add_argument("--no-figures", action="store_true", default=argparse.SUPPRESS)
    _add_device(parser, {"default": argparse.SUPPRESS})
    for option in [*fit_options(), *data_options()]:
        _add(parser, option)
    parser.add_argument("--out", default=argparse.SUPPRESS)
    return parser


def parse(argv: list[str] | None):
    """The parsed arguments of ``argv``, or a parser error (exit 2)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"] and any(a == "--resume" or a.startswith("--resume=") for a in argv):
        parser = _resume_parser()
        args, extras = parser.parse_known_args(argv)
        if extras:
            parser.unknown(extras)
        return args
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        _innermost(parser, args).unknown(extras)
    return args


def _innermost(parser, args):
    """The (sub)parser whose flags ``args`` were parsed with, for suggestions."""
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        sub = action.choices.get(getattr(args, "command", None))
        if sub is None:
            continue
        model = getattr(args, "model", None)
        for inner in sub._subparsers._group_actions if sub._subparsers else []:
            if model in inner.choices:
                return inner.choices[model]
        return sub
    return parser


def _terminate_as_interrupt(signum, frame):
    from .inference.svi import Interrupted

    raise Interrupted("stopped by SIGTERM", signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    import matplotlib

    matplotlib.use("Agg")  # the CLI only writes PNG files
    args = parse(argv)
    from .commands import run_command

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # started by torchrun
        if args.command != "train":
            raise SystemExit(
                f"pgen {args.command} runs in one process; only `pgen train` runs data-parallel "
                "under torchrun (WORLD_SIZE > 1 here)"
            )
        from .inference.svi.distributed import init_from_environment

        init_from_environment()

    from .inference.svi.distributed import shutdown

    previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    ended = False
    try:
        code = run_command(args)
        ended = True
        return code
    finally:
        signal.signal(signal.SIGTERM, previous)
        shutdown(wait=ended)  # nothing outside torchrun


if __name__ == "__main__":
    sys.exit(main())
