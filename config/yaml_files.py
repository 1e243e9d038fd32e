"""Reading a YAML configuration file into a typed object; every error names the file and the key.

Strings may use ``${VAR}`` or ``${VAR:-default}`` to take a value from the
environment.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from config.errors import ConfigError

ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any, environ: dict[str, str] | os._Environ[str] = os.environ) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string of a parsed YAML tree."""
    if isinstance(value, str):
        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            raise KeyError(name)

        return ENV_REFERENCE.sub(substitute, value)
    if isinstance(value, dict):
        return {k: expand_env(v, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, environ) for v in value]
    return value


def format_location(loc: tuple[Any, ...]) -> str:
    """``('sources', 1, 'kind')`` → ``sources[1].kind``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "(top level)"


def describe_validation_error(path: Path | str, error: ValidationError) -> str:
    """One line per problem, each naming the file and the key."""
    lines = []
    problems = error.errors()

    def echoes_an_item(problem: Any) -> bool:
        """A list whose only item failed also reports being too short: noise beside the item's own error."""
        loc = tuple(problem["loc"])
        return problem["type"] == "too_short" and any(
            tuple(other["loc"])[: len(loc)] == loc and len(other["loc"]) > len(loc) for other in problems
        )

    problems = [p for p in problems if not echoes_an_item(p)]
    for problem in problems:
        loc = tuple(p for p in problem["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {format_location(loc)}: {message}")
    return "\n".join(lines)


def read_yaml(path: Path | str) -> Any:
    """Parse a YAML file and expand environment references; errors name the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    try:
        return expand_env(data)
    except KeyError as exc:
        raise ConfigError(f"{path}: environment variable {exc.args[0]} is referenced but not set") from None


def parse_model(model: type[BaseModel], data: Any, path: Path | str) -> Any:
    """Validate parsed YAML into ``model``, turning pydantic errors into ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(path, exc)) from None
