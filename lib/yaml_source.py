"""A YAML settings file parsed to nodes (which keep their line numbers, so every error can name one), with
one error for every way PyYAML rejects the text. Callers word the message; this module knows PyYAML's errors."""

from __future__ import annotations

import yaml
from yaml.nodes import Node

from lib.redact import one_line


class InvalidYaml(ValueError):
    def __init__(self, line: int | None, problem: str) -> None:
        super().__init__(problem)
        self.line = line  # 1-based; None when PyYAML gave no position
        self.problem = problem


def compose(text: str) -> Node | None:
    """The document's root node, None for an empty document. Raises InvalidYaml."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise InvalidYaml(exc.problem_mark.line + 1 if exc.problem_mark else 1, f"{exc.problem}") from None
    except yaml.YAMLError as exc:  # e.g. a control character: the reader's error carries no mark
        raise InvalidYaml(None, one_line(exc)) from None
    except RecursionError:
        raise InvalidYaml(1, "nested too deeply") from None
