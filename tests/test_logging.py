"""astpatch's logging manners and its settings' problems, in fresh interpreters.

The `astpatch` logger has a NullHandler; ASTPATCH_LOG sets its level and prints to stderr only while the program has
no handler of its own, so every record is one line, whatever and whenever the program configures. A problem is one
warning (in the program's log once with `logging.captureWarnings`). A setting's problem is said once, by a process
that imports a target, with no code location.
"""

from __future__ import annotations

import json

import pytest

from conftest import RULE_FILE, check
from scenario import Scenario

# The program counts the records of the astpatch logger with a filter (a filter sees each record once), then prints
# the count as its last line. CONFIGURE runs before install() (or after, with LATE).
PROGRAM = '''
import json, logging, sys
records = []
logging.getLogger("astpatch").addFilter(lambda record: records.append(record.getMessage()) or True)
{configure_early}
import astpatch
astpatch.install(rules=[{rule!r}], cache_dir={cache!r})
{configure_late}
import pickler
print(json.dumps({{"records": records, "handlers": [type(h).__name__ for h in logging.getLogger("astpatch").handlers]}}))
'''

BASIC = 'logging.basicConfig(format="%(name)s|%(levelname)s|%(message)s")'
CAPTURE = BASIC + "; logging.captureWarnings(True)"


def run(scene: Scenario, early: str = "", late: str = "", **env: str):  # type: ignore[no-untyped-def]
    code = PROGRAM.format(configure_early=early, configure_late=late, rule=str(scene.rule), cache=str(scene.cache))
    result = scene.python(code, **env)
    return json.loads(check(result).splitlines()[-1]), result.stderr.splitlines()


def test_debug_lines_once_with_or_without_the_programs_logging(tmp_path):
    """ASTPATCH_LOG=debug: one stderr line per record: astpatch's own format before the program configures logging,
    the program's after (basicConfig before install(), after it, or never)."""
    scene = Scenario(tmp_path)
    for early, late in (("", ""), (BASIC, ""), ("", BASIC)):
        data, stderr = run(scene, early, late, ASTPATCH_LOG="debug")
        records = data["records"]
        assert len(records) >= 3 and any(r.startswith("pickler: rule pickler-valueerror: applied") for r in records)
        ours = [line.removeprefix("astpatch: ") for line in stderr if line.startswith("astpatch: ")]
        programs = [line.removeprefix("astpatch|DEBUG|").removeprefix("astpatch|INFO|") for line in stderr
                    if line.startswith("astpatch|")]
        assert len(stderr) == len(records) and ours + programs == records, (early, late, stderr)
        if early or late:  # the program's format from basicConfig on: install()'s lines only before a late one
            assert programs and (not ours if early else ours and not any(r.startswith("pickler") for r in ours)), stderr
        else:
            assert not programs
        assert data["handlers"] == ["NullHandler", "UntilConfigured"]


def test_a_problem_is_one_warning_and_one_log_line_with_captured_warnings(tmp_path):
    """A rule that fails: one warning; with logging.captureWarnings(True), one record of it; its prefix once."""
    scene = Scenario(tmp_path, rule_file=RULE_FILE.replace('target="Pickler.dumps"', 'target="Pickler.gone"'))
    problem = "astpatch: rule pickler-valueerror was not applied to pickler: "
    for env in ({}, {"ASTPATCH_LOG": "debug"}):
        for early in ("", BASIC, CAPTURE):
            data, stderr = run(scene, early, **env)
            shown = [line for line in stderr if problem in line]
            assert len(shown) == 1, (env, early, stderr)
            assert not any("astpatch: astpatch:" in line for line in stderr)
            if early == CAPTURE:
                assert shown[0].startswith("py.warnings|WARNING|") and f"AstpatchWarning: {problem}" in shown[0]
            else:
                assert f"AstpatchWarning: {problem}" in shown[0]
            astpatch_lines = [line for line in stderr if line.startswith(("astpatch: ", "astpatch|"))]
            assert len(astpatch_lines) == (len(data["records"]) if env else 0), (env, early, stderr)


def test_info_level_shows_the_outcomes_only(tmp_path):
    scene = Scenario(tmp_path)
    data, stderr = run(scene, ASTPATCH_LOG="INFO")
    assert stderr == ["astpatch: pickler: rule pickler-valueerror: applied (rewrite): "
                      "added ValueError to `except (TypeError, AttributeError)`"]
    data, stderr = run(scene, ASTPATCH_LOG="warning")
    assert stderr == [] and data["handlers"] == ["NullHandler", "UntilConfigured"]


def test_without_astpatch_log_the_logger_has_a_null_handler_and_prints_nothing(tmp_path):
    scene = Scenario(tmp_path)
    data, stderr = run(scene)
    assert stderr == [] and data["handlers"] == ["NullHandler"] and data["records"] == []
    data, stderr = run(scene, early='logging.basicConfig(level=logging.DEBUG, format="%(name)s|%(message)s")')
    # The program asked for every DEBUG record: it gets astpatch's, once each, through its own handler.
    assert data["records"] and stderr == [f"astpatch|{record}" for record in data["records"]]


TWO_TARGETS = '''
import sys, warnings
warnings.simplefilter("always")
import astpatch
astpatch.install(rules=[{rule!r}], cache_dir={cache!r})
astpatch.uninstall()
astpatch.install(rules=[{rule!r}], cache_dir={cache!r})
print("installed", file=sys.stderr)
import json
if sys.argv[1] == "import":
    import pickler, second
print("done", file=sys.stderr)
'''

SECOND_RULE = RULE_FILE.replace('id="pickler-valueerror"', 'id="second-valueerror"').replace(
    'module="pickler"', 'module="second"')


@pytest.mark.parametrize("setting, value, message", [
    ("ASTPATCH_STRICT", "banana", "astpatch: ignoring ASTPATCH_STRICT='banana': use 1 to turn it on or 0 to turn it off."),
    ("ASTPATCH_NO_CACHE", "maybe", "astpatch: ignoring ASTPATCH_NO_CACHE='maybe': use 1 to turn it on or 0 to turn it off."),
    ("ASTPATCH_LOG", "verbose", "astpatch: ignoring ASTPATCH_LOG='verbose': use one of debug, info, warning, error, "
                                "critical, or 0 to turn it off."),
    ("ASTPATCH_DISABLE", "no-such-rule", "astpatch: ASTPATCH_DISABLE names 'no-such-rule', which is no known rule id"),
])
def test_a_settings_problem_is_said_once_by_a_process_that_imports_a_target(tmp_path, setting, value, message):
    """Not at install() (a process that imports no target says nothing), once however many installs and targets,
    naming the setting, with no code location (`sys:1`, not the `<string>:1` of the line that read it)."""
    scene = Scenario(tmp_path)
    scene.write("second", (scene.site / "pickler.py").read_text())
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "a.py").write_text(RULE_FILE)
    (tmp_path / "rules" / "b.py").write_text(SECOND_RULE)
    code = TWO_TARGETS.format(rule=str(tmp_path / "rules"), cache=str(scene.cache))
    quiet = scene.python(code, "no-import", **{setting: value})
    assert check(quiet) == "" and quiet.stderr.splitlines() == ["installed", "done"]
    said = scene.python(code, "import", **{setting: value})
    check(said)
    installed, warning, done = said.stderr.splitlines()
    assert (installed, done) == ("installed", "done")
    assert warning.startswith(f"sys:1: AstpatchWarning: {message}"), warning


def test_a_settings_problem_is_said_when_install_patches_a_target_imported_before_it(tmp_path):
    scene = Scenario(tmp_path)
    code = (f"import warnings; warnings.simplefilter('always'); import pickler, astpatch\n"
            f"astpatch.install(rules=[{str(scene.rule)!r}], cache_dir={str(scene.cache)!r})\n"
            "print('ValueError' in pickler.Pickler.dumps.__code__.co_names)\n")
    result = scene.python(code, ASTPATCH_STRICT="banana")
    assert check(result) == "True\n"
    assert result.stderr.splitlines() == ["sys:1: AstpatchWarning: astpatch: ignoring ASTPATCH_STRICT='banana': use 1 to "
                                          "turn it on or 0 to turn it off."]
