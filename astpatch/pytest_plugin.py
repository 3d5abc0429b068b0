"""The pytest plugin: astpatch for a test session, off unless asked for.

    pytest --astpatch                  # install astpatch before the tests (or ini: astpatch = true)
    pytest --astpatch-still-needed     # also fail the run when a rule is already fixed upstream

A `[tool.astpatch]` table in the pyproject.toml of pytest's rootdir asks for it too (ini
`astpatch = false` or `-p no:astpatch` says no), and its settings apply to the session, under
the ASTPATCH_* variables (see `astpatch._base.settings`).

The header shows each rule's state, computed from the installed sources without importing
them; the summary shows what each rule did to the imports of the session. `--astpatch-still-needed`
is for a project's CI: the day upstream ships the fix, the run fails and says which rule to delete.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("astpatch")
    group.addoption("--astpatch", action="store_true", default=False,
                    help="install astpatch (import-time source patches) for the test session")
    group.addoption("--astpatch-still-needed", action="store_true", default=False,
                    help="fail the run when a rule's target is already fixed upstream (implies --astpatch)")
    # No default: unset (None, or [] on pytest 8) differs from an explicit `astpatch = false`.
    parser.addini("astpatch", type="bool", default=None,
                  help="install astpatch for the test session (default: when pyproject.toml has [tool.astpatch])")


def _enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("astpatch") or config.getoption("astpatch_still_needed")
                or getattr(config, "_astpatch_installation", None) is not None)


def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    # Called for plugins from entry points before the conftest files (and so the test modules)
    # are imported: the finder is in place before anything imports a target.
    # The command line is only partly parsed here: read the options from the early namespace.
    early = early_config.known_args_namespace
    ini = early_config.getini("astpatch")
    project = _project(early_config)
    if not (getattr(early, "astpatch", False) or getattr(early, "astpatch_still_needed", False) or ini is True
            or (project is not None and ini is not False)):
        return
    from ._base import settings
    from ._hook.installation import install

    previous = settings.use_project(project.values if project else {})
    strict = settings.flag(settings.STRICT)  # the variable's, else the table's
    try:
        for problem in project.problems if project else ():
            _problem(early_config, problem, strict, "the rest of the table applies")
    except BaseException:
        settings.use_project(previous)
        raise
    early_config._astpatch_settings = previous  # type: ignore[attr-defined]
    early_config._astpatch_installation = install()  # type: ignore[attr-defined]


def _project(config: pytest.Config):  # type: ignore[no-untyped-def]
    """The [tool.astpatch] table of the pyproject.toml in pytest's rootdir, or None (a file that
    cannot be read is reported, and then counts as none)."""
    from ._base.projectconfig import FILENAME, ConfigError, read

    try:
        return read(str(config.rootpath / FILENAME))
    except ConfigError as error:
        from ._base import settings

        _problem(config, str(error), settings.flag(settings.STRICT), "its [tool.astpatch] is ignored")
        return None


def _problem(config: pytest.Config, message: str, strict: bool, then: str) -> None:
    """A setting that cannot be used: a warning (pytest's filters apply), a usage error when strict."""
    import pytest

    from ._base.messages import AstpatchWarning

    if strict:
        raise pytest.UsageError(f"astpatch: {message} (strict mode: fix it, or unset strict)")
    config.issue_config_time_warning(AstpatchWarning(f"astpatch: {message}; {then}"), stacklevel=2)


def pytest_unconfigure(config: pytest.Config) -> None:
    installation = getattr(config, "_astpatch_installation", None)
    if installation is not None:
        installation.uninstall()
    previous = getattr(config, "_astpatch_settings", None)
    if previous is not None:  # the settings this session put in force end with it (pytester runs in-process)
        from ._base import settings

        settings.use_project(previous)


def _print_problem(message: str) -> None:
    import sys

    print(message, file=sys.stderr)


def _states(config: pytest.Config) -> list:
    """(rule, outcome) for every rule in force, evaluated on the installed sources, once per session."""
    cached = getattr(config, "_astpatch_states", None)
    if cached is None:
        from ._inspect.evaluate import evaluate
        from ._inspect.sources import Installed
        from ._model.inforce import rules_in_force

        rules = rules_in_force([], _print_problem).rules
        cached = [(rule, o) for m in evaluate(rules, Installed()) for rule, o in m.outcomes]
        config._astpatch_states = cached  # type: ignore[attr-defined]
    return cached


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    if not _enabled(config):
        return None
    from ._base.outcomes import DESCRIPTIONS

    lines = [f"astpatch: {len(_states(config))} rules"]
    lines += [f"  {rule.id}: {DESCRIPTIONS[o.status]}" for rule, o in _states(config)]
    return lines


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    if not _enabled(config):
        return
    from ._base.outcomes import ALREADY_FIXED, recorded

    terminalreporter.section("astpatch")
    outcomes = recorded()
    for o in outcomes:
        terminalreporter.write_line(f"{o.rule_id} on {o.module}: {o.status}{' (cached)' if o.from_cache else ''}")
    if not outcomes:
        terminalreporter.write_line("no rule met an import in this session")
    if config.getoption("astpatch_still_needed"):
        for rule, o in _states(config):
            if o.status == ALREADY_FIXED:
                terminalreporter.write_line(
                    f"rule {rule.id} is no longer needed: {o.reason}. Delete it ({rule.origin}).", red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if not config.getoption("astpatch_still_needed"):
        return
    from ._base.outcomes import ALREADY_FIXED

    if any(o.status == ALREADY_FIXED for _, o in _states(config)) and session.exitstatus == 0:
        session.exitstatus = 1
