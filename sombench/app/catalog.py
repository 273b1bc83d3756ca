"""What a user discovers before running: the registered algorithms, one algorithm's config fields
(`sombench algos NAME`), and the paper's tasks with their budgets (`sombench envs`)."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import textwrap
from typing import Any

from sombench.app import common


@dataclasses.dataclass(frozen=True)
class AlgoInfo:
    name: str
    description: str
    presets: list[str]


def algorithms_list() -> list[AlgoInfo]:
    """Every registered algorithm, sorted by name."""
    return [AlgoInfo(name, cls.description, sorted(cls.presets)) for name, cls in
            ((n, common.algorithm_class(n)) for n in common.algorithm_names())]


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """One config field as `--set key=value` sees it."""

    name: str
    type: str
    default: Any
    """After the preset, if one was named."""
    domain: str
    """The values the field accepts (algorithms/common/config.py Domain.describe)."""
    doc: str
    """The first sentence of the field's docstring (its source and reason)."""
    preset: bool
    """Whether the preset changed this field's default."""


_SENTENCE_END = re.compile(r"(?<!\bEq)(?<!\bEqs)(?<!\bSec)(?<!\bal)(?<!\be\.g)(?<!\bi\.e)(?<!\bFig)(?<!\bApp)(?<!\bvs)\. (?=[A-Z(`])")
"""A full stop that ends a sentence: followed by a capital, not after Eq., Sec., et al., e.g., i.e., Fig., App., vs."""


def _first_sentence(doc: str) -> str:
    """The docstring's first sentence (its first paragraph joined into one line)."""
    paragraph = " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())
    end = _SENTENCE_END.search(paragraph)
    return paragraph if end is None else paragraph[:end.start() + 1]


def _field_docs(config_cls: type) -> dict[str, str]:
    """Attribute docstrings (the string literal after a field) of a dataclass and its bases, nearest first."""
    docs: dict[str, str] = {}
    for klass in config_cls.__mro__:
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
                docs.setdefault(node.target.id, _first_sentence(after.value.value))
    return docs


def _type_name(annotation: Any) -> str:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    return text.replace("typing.", "").replace("Optional[", "optional ").rstrip("]") if "Optional[" in text else text


def config_fields(name: str, preset: str | None = None) -> list[FieldInfo]:
    """Every config field of algorithm `name`, in declaration order, with defaults after `preset`."""
    from algorithms.common.config import field_domain
    from sombench.runs.spec import resolve_config

    cls = common.algorithm_class(name)
    config = resolve_config(name, preset, [])
    defaults = resolve_config(name, None, [])
    docs = _field_docs(cls.Config)
    out = []
    for f in dataclasses.fields(cls.Config):
        domain = field_domain(cls.Config, f.name)
        value = getattr(config, f.name)
        out.append(FieldInfo(f.name, _type_name(f.type), value, domain.describe() if domain else "-", docs.get(f.name, ""),
                             value != getattr(defaults, f.name)))
    return out


@dataclasses.dataclass(frozen=True)
class TaskInfo:
    env_id: str
    budget: int
    longer: list[tuple[str, int]]
    """(algorithm, budget) where an algorithm's reference trains longer on this task."""
    description: str


def paper_tasks() -> list[TaskInfo]:
    """The paper's tasks (Section 5.1) with their budgets, and the algorithms that train longer on them."""
    from sombench.envs import PAPER_TASKS

    classes = {n: common.algorithm_class(n) for n in common.algorithm_names()}
    return [TaskInfo(task.env_id, task.budget,
                     [(n, task.budget * cls.budget_factor[task.env_id]) for n, cls in classes.items()
                      if cls.budget_factor.get(task.env_id, 1) != 1], task.description)
            for task in PAPER_TASKS.values()]


def bandit_tasks() -> dict[str, str]:
    """The 2-D bandits (Section 5.2, Appendix F): env id -> description."""
    from sombench.bandit.tasks import BANDITS

    return dict(BANDITS)
