"""What the commands share: exit statuses, usage errors, the project's settings, the rules they
work on and the environment they inspect."""

from __future__ import annotations

import contextlib
import os
import sys

from .._base import settings
from .._base.messages import trace
from .._model.inforce import rules_in_force
from .._model.rule import Rule

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from .._inspect.environment import Environment

EXIT_OK, EXIT_FINDING, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


# The rule paths of the project's [tool.astpatch] table, when no ASTPATCH_RULES overrides them:
# loaded as the ones given with --rules are, so that one that fails to load fails the command.
_project_rules: list[str] = []


@contextlib.contextmanager
def project_settings(export: bool) -> Iterator[None]:
    """The settings of the project around the working directory (the nearest pyproject.toml with a
    [tool.astpatch] table, upwards), in force for a command; with `export` (`astpatch run`), passed
    to the program and its child processes through the ASTPATCH_* variables instead."""
    from .._base.projectconfig import ConfigError, find

    try:
        project = find(os.getcwd())
    except ConfigError as error:
        raise UsageError(str(error)) from None
    values = settings.not_overridden(project.values) if project is not None else {}
    if project is not None:
        if project.problems:  # each on its line; the command does not run on half its settings
            for problem in project.problems[:-1]:
                print(f"astpatch: error: {problem}", file=sys.stderr)
            raise UsageError(project.problems[-1])
        trace(f"settings from {project.path}: {', '.join(sorted(values)) or 'all overridden by variables'}")
    if export:
        os.environ.update(values)
        yield
        return
    rules = values.pop(settings.RULES, "")
    _project_rules[:] = [p for p in rules.split(os.pathsep) if p]
    previous = settings.use_project(values)
    try:
        yield
    finally:
        settings.use_project(previous)
        _project_rules.clear()


def configured_rule_paths() -> list[str]:
    """The rule paths the environment or the project names (ASTPATCH_RULES, which overrides the
    project's `[tool.astpatch] rules`), in their order."""
    return [*settings.rule_paths(), *_project_rules]


class Rules(list[Rule]):
    """The rules a command works on; `broken` names the rule files the user gave (`--rules`) that
    failed to load, each reported on stderr: the command still reports the others, then exits 1."""

    broken: list[str]


def load_rules(extra: list[str], only: list[str] | None = None) -> Rules:
    """The rules in force (shipped, ASTPATCH_RULES or the project's, --rules, other distributions'),
    as `install()` would have them; with `only`, those named by id or module, in the order named."""
    for path in extra:
        if not os.path.exists(path):
            raise UsageError(f"rule path {path} does not exist")
    problems: list[str] = []
    broken: list[str] = []
    ruleset = rules_in_force([*_project_rules, *extra], problems.append, broken)
    for message in problems:
        if not any(problem in message for problem in broken):  # those get their error line below
            print(message, file=sys.stderr)
    for problem in broken:  # a file the user named must load, or the command fails
        print(f"astpatch: error: {problem}", file=sys.stderr)
    rules = Rules(select(ruleset.rules, only) if only else ruleset.rules)
    rules.broken = broken
    return rules


def select(rules: list[Rule], names: Iterable[str]) -> list[Rule]:
    """The rules named by id or by module, in the order named; a name that is neither is a usage error."""
    chosen: list[Rule] = []
    for name in names:
        matched = [r for r in rules if name == r.id or name in r.modules]
        if not matched:
            known = ", ".join(sorted(r.id for r in rules)) or "none"
            raise UsageError(f"no rule has the id or module {name!r} (known rule ids: {known})")
        chosen.extend(r for r in matched if r not in chosen)
    return chosen


def status(found: int, rules: Rules) -> int:
    """A command's exit status: EXIT_FINDING for a finding or a named rule file that failed to load."""
    return EXIT_FINDING if found or rules.broken else EXIT_OK


def environment(python: str | None, loads_rules: bool = True) -> Environment:
    """The environment to inspect: `--python`'s, the active virtual environment, or astpatch's own.
    For a command that `loads_rules`, the rules that another environment's distributions declare
    (which are not loaded) are named on stderr."""
    from .._inspect.environment import target, unloaded_rules
    from .._inspect.sources import SourceError

    try:
        env = target(python)
    except SourceError as error:
        raise UsageError(str(error)) from None
    for distribution in unloaded_rules(env) if loads_rules else ():
        print(f"astpatch: the rules that {distribution} declares in {env.prefix} (an astpatch.rules entry point) are "
              f"not loaded: astpatch imports no code of another environment. Run `{env.python} -m astpatch` there, "
              "or name its rule files with --rules.", file=sys.stderr)
    return env


def installed_sources(environment: Environment | None = None):  # type: ignore[no-untyped-def]
    from .._inspect.sources import Installed

    return Installed(environment.path if environment is not None else None)


def distribution_of(package: str, installed: bool, path: list[str] | None = None) -> str:
    """The distribution that installs top-level package `package` (`yaml` -> `PyYAML`) in the
    environment whose search path is `path` (default: this one's), when its metadata says so
    unambiguously (`top_level.txt`, else the files it records); else the package's own name."""
    if installed:
        from importlib.metadata import distributions

        names = {dist.metadata["Name"] for dist in distributions(path=sys.path if path is None else path)
                 if package in _top_level(dist)}
        if len(names) == 1:
            return names.pop()
    return package


def _top_level(dist) -> set[str]:  # type: ignore[no-untyped-def]
    """The top-level packages and modules an installed distribution provides."""
    declared = dist.read_text("top_level.txt")
    if declared:
        return set(declared.split())
    return {f.parts[0] if len(f.parts) > 1 else f.name.partition(".")[0] for f in dist.files or ()}
