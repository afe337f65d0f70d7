"""Options a family offers on the command line, declared as data.

An :class:`Option` is what the CLI turns into a flag (``--latent-dim``) and what a run
records (``latent_dim`` in ``config.json``). Most come from signatures: a model's
constructor, an energy model's ``contrastive_divergence``. Their help is the argument's
own entry in the docstring's ``Args:`` section, with Sphinx markup turned into text.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

__all__ = ["Option", "options_from", "argument_help", "plain_text", "first_sentence"]

_ROLE = re.compile(r":(?:math|class|func|meth|mod|attr|data|obj|ref):`~?([^`]*)`")


def plain_text(text: str) -> str:
    """Docstring text without Sphinx markup: ``:math:`\\beta``` -> ``beta``, ````x```` -> ``x``,
    ``:class:`~pgen.models.VAE``` -> ``VAE``."""

    def role(match):
        inner = match.group(1)
        if match.group(0).startswith(":math:"):
            return re.sub(r"\\(mathcal|mathrm|operatorname|text)\{([^}]*)\}", r"\2", inner).replace("\\", "")
        if match.group(0).startswith(":mod:"):
            return inner  # a module by its full name
        return inner.rsplit(".", 1)[-1]

    text = _ROLE.sub(role, text)
    text = text.replace("``", "")
    return " ".join(text.split())


def first_sentence(doc: str | None) -> str:
    """The first sentence of a docstring (not its first line, which may be cut)."""
    paragraph = plain_text((doc or "").strip().split("\n\n")[0])
    match = re.search(r"(.+?[.:])(\s|$)", paragraph)
    return (match.group(1) if match else paragraph).rstrip(":.") + "."


def argument_help(fn) -> dict[str, str]:
    """The ``Args:`` entries of a Google-style docstring (also of the class, for an
    ``__init__``), as plain text, by argument name; ``a, b: text`` documents both."""
    docs = [inspect.getdoc(fn) or ""]
    owner = getattr(fn, "__qualname__", "").rsplit(".", 1)
    if fn.__name__ == "__init__" and len(owner) == 2:
        cls = getattr(inspect.getmodule(fn), owner[0], None)
        docs.insert(0, inspect.getdoc(cls) or "")
    out: dict[str, str] = {}
    for doc in docs:
        in_args, current, indent = False, None, None
        for line in doc.splitlines():
            stripped = line.strip()
            if stripped in ("Args:", "Arguments:", "Parameters:"):
                in_args, current, indent = True, None, None
                continue
            if not in_args:
                continue
            if stripped and not line.startswith(" "):
                in_args = False  # the next section
                continue
            here = len(line) - len(line.lstrip())
            match = re.match(r"^([\w, ]+?):\s*(.*)$", stripped)
            if match and (indent is None or here <= indent):
                indent = here
                current = [n.strip() for n in match.group(1).split(",")]
                for name in current:
                    out[name] = match.group(2)
            elif current and stripped:
                for name in current:
                    out[name] = f"{out[name]} {stripped}"
    return {k: plain_text(v) for k, v in out.items()}


@dataclass(frozen=True)
class Option:
    """One command-line option.

    Attributes:
        name: the Python name (``latent_dim``); the flag is ``--latent-dim``.
        help: one or two sentences.
        default: shown in the help; ``None`` if the option has no default of its own.
        type: ``int``, ``float``, ``str``, ``bool`` (a ``--x/--no-x`` switch) or a parser.
        choices: the allowed values.
        many: a list of values (``--hidden 256 256``).
        metavar: how the value is shown in the help.
    """

    name: str
    help: str = ""
    default: Any = None
    type: Any = str
    choices: tuple | None = None
    many: bool = False
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _number_or_literal(numeric: tuple, literals: tuple):
    def parse(text: str):
        if text in literals:
            return text
        for kind in numeric:
            try:
                return kind(text)
            except ValueError:
                pass
        raise ValueError(f"expected a number or one of {list(literals)}, got {text!r}")

    parse.__name__ = "|".join([*(t.__name__ for t in numeric), *literals])
    return parse


def _from_hint(name: str, hint, default, help_text: str) -> Option:
    origin, args = get_origin(hint), get_args(hint)
    shown = None if default is inspect.Parameter.empty else default
    if hint is bool:
        return Option(name, help_text, shown, bool)
    if hint in (int, float, str):
        return Option(name, help_text, shown, hint, metavar=name.upper())
    if origin in (tuple, list):
        return Option(name, help_text, shown, args[0] if args else str, many=True, metavar="N")
    if origin is Literal:
        return Option(name, help_text, shown, str, choices=tuple(args))
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        sequences = [a for a in inner if get_origin(a) in (tuple, list)]
        if sequences:
            return Option(name, help_text, shown, get_args(sequences[0])[0], many=True, metavar="N")
        if len(inner) == 1:
            return _from_hint(name, inner[0], default, help_text)
        literals = tuple(a for arg in inner if get_origin(arg) is Literal for a in get_args(arg))
        numeric = tuple(a for a in inner if a in (int, float))
        if literals and not numeric:
            return Option(name, help_text, shown, str, choices=literals)
        parse = _number_or_literal(numeric, literals)
        return Option(name, help_text, shown, parse, metavar=parse.__name__)
    return Option(name, help_text, shown, str, metavar=name.upper())


def options_from(fn, *, skip: tuple[str, ...] = ()) -> list[Option]:
    """The options of ``fn``'s named arguments (``self`` and ``skip`` left out), typed by
    its annotations and documented by its docstring."""
    hints = typing.get_type_hints(fn)
    docs = argument_help(fn)
    out = []
    for name, param in inspect.signature(fn).parameters.items():
        if name == "self" or name in skip or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        out.append(_from_hint(name, hints.get(name, str), param.default, docs.get(name, "")))
    return out
