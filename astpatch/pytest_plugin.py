"""The pytest plugin: astpatch for a test session, off unless asked for.

    pytest --astpatch                  # install astpatch before the tests (or ini: astpatch = true)
    pytest --astpatch-still-needed     # also fail the run when a rule is already fixed upstream

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
    parser.addini("astpatch", type="bool", default=False, help="install astpatch for the test session")


def _enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("astpatch") or config.getoption("astpatch_still_needed") or config.getini("astpatch"))


def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    # Called for plugins from entry points before the conftest files (and so the test modules)
    # are imported: the finder is in place before anything imports a target.
    # The command line is only partly parsed here: read the options from the early namespace.
    early = early_config.known_args_namespace
    if not (getattr(early, "astpatch", False) or getattr(early, "astpatch_still_needed", False)
            or early_config.getini("astpatch")):
        return
    from ._hook.installation import install

    early_config._astpatch_installation = install()  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    installation = getattr(config, "_astpatch_installation", None)
    if installation is not None:
        installation.uninstall()


def _print_problem(message: str) -> None:
    import sys

    print(message, file=sys.stderr)


def _states(config: pytest.Config) -> list:
    """(rule, outcome) for every rule in force, evaluated on the installed sources, once per session."""
    cached = getattr(config, "_astpatch_states", None)
    if cached is None:
        from ._inspect.evaluate import evaluate
        from ._inspect.sources import Installed
        from ._model.ruleset import rules_in_force

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
