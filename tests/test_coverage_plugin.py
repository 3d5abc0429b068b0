"""The coverage.py plugin (`astpatch.coverage`), in real `coverage run`s of fresh processes.

The oracle: the patched text written as a plain file and measured by coverage alone. Its line
numbers differ from the ones that run (the lines a change adds, or replaces by a different number
of lines, run past the end of the file; every other line keeps its number in the file), so they
are mapped to the shown numbers read from `linecache`'s text, notes included.
"""

from __future__ import annotations

import glob
import html
import json
import re
from pathlib import Path

import pytest

from scenario import Scenario

SHAPES = '''\
"""Shapes."""

import math

SCALE = 2


def area(radius):
    value = math.pi * radius ** 2
    return value * SCALE


def unused():  # pragma: no cover
    return "never called"


class Box:
    def size(self, n):
        if n > 10:
            return "big"
        return "small"

    def label(self):
        return (
            "box"
        )
'''

CALC = '''\
def deco(function):
    return function


@deco
def triple(
    x,
    scale=len("abc"),
):
    y = scale * x
    return y


class Box:
    @staticmethod
    def size(n):
        if n > 10:
            return "big"
        return "small"
'''

PLAIN = '''\
def f(x):
    if x:
        return 1
    return 2


class K:
    """Doc."""

    def g(self):
        return [
            1,
        ]
'''

# shapes: a helper added at the top level and lines inserted into area() (the module compiles whole,
# renumbered), and Box.size changed in place. calc: lines added to one function and removed from a
# method, each recompiled alone.
RULES = '''\
from astpatch import ApplyHunks, Change, Hunk, Rule

RULES = [
    Rule(id="shapes-clamp", summary="Clamp negative radii", upstream="test fixture", changes=[
        Change(module="shapes", scope="", edit=ApplyHunks(hunks=[Hunk(
            before=["def unused():  # pragma: no cover"],
            after=["def _clamp(radius):", "    if radius < 0:", "        return 0", "    return radius", "", "",
                   "def unused():  # pragma: no cover"],
        )])),
        Change(module="shapes", scope="area", edit=ApplyHunks(hunks=[Hunk(
            before=["    value = math.pi * radius ** 2"],
            after=["    radius = _clamp(radius)", "    value = math.pi * radius ** 2"],
        )])),
        Change(module="shapes", scope="Box.size", edit=ApplyHunks(hunks=[Hunk(
            before=["        if n > 10:"], after=["        if n >= 10:"],
        )])),
    ]),
    Rule(id="calc-fixes", summary="Absolute values, shorter size", upstream="test fixture", changes=[
        Change(module="calc", scope="triple", edit=ApplyHunks(hunks=[Hunk(
            before=["    y = scale * x"], after=["    x = abs(x)", "    y = scale * x"],
        )])),
        Change(module="calc", scope="Box.size", edit=ApplyHunks(hunks=[Hunk(
            before=["        if n > 10:", '            return "big"', '        return "small"'],
            after=['        return "big" if n >= 10 else "small"'],
        )])),
    ]),
]
'''

PROGRAM = '''\
import json, linecache, os, sys
if os.environ.get("TYPEGUARD_HOOK"):  # another import hook, whose loader compiles the patched text
    from typeguard import install_import_hook
    install_import_hook(["shapes"])
if len(sys.argv) > 1:
    import astpatch
    astpatch.install(rules=[sys.argv[1]], cache_dir=sys.argv[2])
import calc, plain, shapes
shapes.area(-3), shapes.area(2), shapes.Box().size(1), calc.triple(-2), calc.Box.size(1), plain.f(1), plain.K().g()
if len(sys.argv) > 3:
    with open(sys.argv[3], "w") as f:
        json.dump({m.__name__: linecache.getlines(m.__file__) for m in (shapes, calc)}, f)
'''

MODULES = {"shapes": SHAPES, "calc": CALC, "plain": PLAIN}
INCLUDE = "include =\n    */shapes.py\n    */calc.py\n    */plain.py\n"
WITH_PLUGIN = "[run]\nplugins = astpatch.coverage\n" + INCLUDE
WITHOUT_PLUGIN = "[run]\n" + INCLUDE
NOTE = re.compile(r"# astpatch: (?:lines (\d+)-(\d+) of this file, as patched|inserted after line (\d+) of this file)\n")


def unfold(shown: list[str], count: int) -> tuple[list[str], list[int], list[tuple[int, int, int, int]]]:
    """From the text `linecache` shows for a file of `count` lines: the patched text, each of its
    lines' shown number (index 0 unused), and the moved blocks (start, end, first shown line, length)."""
    notes = [i for i in range(count, len(shown)) if NOTE.fullmatch(shown[i])]
    blocks = []
    for k, i in enumerate(notes):
        m = NOTE.fullmatch(shown[i])
        assert m is not None
        start, end = (int(m[1]), int(m[2])) if m[1] else (int(m[3]) + 1, int(m[3]))
        stop = notes[k + 1] - 1 if k + 1 < len(notes) else len(shown)  # a blank line before each note
        blocks.append((start, end, i + 2, stop - i - 1))
    patched, number, position = [""], [0], 1
    for start, end, first, length in sorted(blocks):
        for n in range(position, start):
            patched.append(shown[n - 1])
            number.append(n)
        for n in range(first, first + length):
            patched.append(shown[n - 1])
            number.append(n)
        position = end + 1
    for n in range(position, count + 1):
        patched.append(shown[n - 1])
        number.append(n)
    return patched[1:], number, blocks


def coverage(scene: Scenario, cwd: Path, *args: str, **env: str) -> str:
    result = scene.execute("-m", "coverage", *args, cwd=cwd, **env)
    assert result.returncode == 0, f"coverage {args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def entry(report: dict, module: str) -> dict:
    (found,) = [v for k, v in report["files"].items() if Path(k).name == f"{module}.py"]
    return found


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The program measured with the plugin (two parallel runs, combined, reported by later
    processes), the same run without the plugin, and the oracle's run of the patched text."""
    tmp = tmp_path_factory.mktemp("coverage")
    scene = Scenario(tmp, source=None, rule_file=RULES)
    for name, source in MODULES.items():
        scene.write(name, source)
    program = tmp / "program.py"
    program.write_text(PROGRAM)
    measured, unplugged = tmp / "measured", tmp / "unplugged"
    for cwd, rc in ((measured, WITH_PLUGIN), (unplugged, WITHOUT_PLUGIN)):
        cwd.mkdir()
        (cwd / ".coveragerc").write_text(rc)
        for _ in range(2):
            coverage(scene, cwd, "run", "-p", str(program), str(scene.rule), str(scene.cache), str(tmp / "shown.json"))
        coverage(scene, cwd, "combine")
        coverage(scene, cwd, "json", "-o", "report.json")
    coverage(scene, measured, "html", "-d", "htmlcov")
    shown = json.loads((tmp / "shown.json").read_text())
    # The oracle: the patched texts as plain files, measured by coverage alone.
    (tmp / "oracle").mkdir()
    oracle = Scenario(tmp / "oracle", source=None, rule_file=None)
    unfolded = {}
    for name in ("shapes", "calc"):
        unfolded[name] = unfold(shown[name], len(MODULES[name].splitlines()))
        oracle.write(name, "".join(unfolded[name][0]))
    oracle.write("plain", PLAIN)
    (tmp / "oracle" / ".coveragerc").write_text(WITHOUT_PLUGIN)
    coverage(oracle, tmp / "oracle", "run", str(program))
    coverage(oracle, tmp / "oracle", "json", "-o", "report.json")
    reports = {d: json.loads((tmp / d / "report.json").read_text()) for d in ("measured", "unplugged", "oracle")}
    return {"tmp": tmp, "scene": scene, "shown": shown, "unfolded": unfolded, **reports}


def mapped(lines: list[int], number: list[int]) -> list[int]:
    return sorted(number[n] for n in lines)


def test_a_module_compiled_whole_reports_as_the_oracle_at_the_shown_lines(runs):
    """Inserted lines count, executed, at their shown numbers; no removed upstream line is missing."""
    _, number, blocks = runs["unfolded"]["shapes"]
    got, want = entry(runs["measured"], "shapes"), entry(runs["oracle"], "shapes")
    for key in ("executed_lines", "missing_lines", "excluded_lines"):
        assert got[key] == mapped(want[key], number), key
    assert got["summary"]["num_statements"] == want["summary"]["num_statements"]
    for kind in ("functions", "classes"):
        assert {name: (r.get("start_line"), r["executed_lines"], r["missing_lines"]) for name, r in got[kind].items()} == \
            {name: (number[r["start_line"]] if "start_line" in r else None, mapped(r["executed_lines"], number),
                    mapped(r["missing_lines"], number))
             for name, r in want[kind].items()}, kind
    shown = runs["shown"]["shapes"]
    assert shown.index("    radius = _clamp(radius)\n") + 1 in got["executed_lines"]
    assert shown.index("def _clamp(radius):\n") + 1 > len(SHAPES.splitlines())
    for start, end, _, _ in blocks:
        assert not set(range(start, end + 1)) & set(got["missing_lines"])


def test_a_function_recompiled_alone_reports_as_the_oracle_with_its_unchanged_lines_at_their_lines(runs):
    """A function whose edit changed its line count: its decorators, `def` and unchanged lines run
    (and are reported executed) at their lines in the file; only the new lines run past its end."""
    _, number, blocks = runs["unfolded"]["calc"]
    shown = runs["shown"]["calc"]
    got, want = entry(runs["measured"], "calc"), entry(runs["oracle"], "calc")
    for key in ("executed_lines", "missing_lines", "excluded_lines"):
        assert got[key] == mapped(want[key], number), key
    assert got["summary"]["num_statements"] == want["summary"]["num_statements"]
    # triple(): `x = abs(x)` inserted before its last two lines, which stay at lines 10 and 11.
    file = CALC.splitlines(keepends=True)
    assert shown[9:11] == file[9:11] == ["    y = scale * x\n", "    return y\n"]
    assert {10, 11} <= set(got["executed_lines"])
    assert shown.index("    x = abs(x)\n") + 1 in got["executed_lines"]
    assert [(start, end, length) for start, end, _, length in blocks] == [(10, 9, 1), (17, 19, 1)]
    assert got["missing_lines"] == []  # upstream's `return "big"` no longer runs


def test_a_module_astpatch_did_not_patch_reports_exactly_as_without_the_plugin(runs):
    assert entry(runs["measured"], "plain") == entry(runs["oracle"], "plain") == entry(runs["unplugged"], "plain")


def test_without_the_plugin_the_removed_lines_are_missing(runs):
    """What the plugin fixes: coverage alone reports upstream's text of a patched file, the lines a
    change replaced missing and the lines it added (past the end of the file) dropped. The lines no
    change touched, a changed function's among them, count as with the plugin."""
    got = entry(runs["unplugged"], "calc")
    assert {17, 18, 19} <= set(got["missing_lines"])  # Box.size's three lines, now one past the end
    for module in ("calc", "shapes"):
        got, measured = entry(runs["unplugged"], module), entry(runs["measured"], module)
        count = len(MODULES[module].splitlines())
        assert max(got["executed_lines"]) <= count
        assert got["executed_lines"] == [n for n in measured["executed_lines"] if n <= count]
    assert {9, 10} <= set(entry(runs["unplugged"], "shapes")["executed_lines"])  # area(), lines inserted above


def test_the_html_report_shows_the_text_that_ran(runs):
    (page,) = glob.glob(str(runs["tmp"] / "measured" / "htmlcov" / "*shapes_py.html"))
    rows = re.findall(r'<p class="([a-z_ ]*)"><span class="n"><a id="t(\d+)".*?<span class="t">(.*?)&nbsp;</span>',
                      Path(page).read_text())
    text = [html.unescape(re.sub(r"<[^>]+>", "", body)) for _, _, body in rows]
    assert [int(n) for _, n, _ in rows] == list(range(1, len(rows) + 1))
    assert text == [line.rstrip() for line in runs["shown"]["shapes"]]
    got = entry(runs["measured"], "shapes")
    assert [int(n) for c, n, _ in rows if c.startswith("run")] == got["executed_lines"]
    assert [int(n) for c, n, _ in rows if c.startswith("mis")] == got["missing_lines"]
    assert '<span class="key">def</span> <span class="nam">_clamp</span>' in Path(page).read_text()  # tokens


def test_code_compiled_by_another_import_hook_reports_as_the_patched_text(runs, tmp_path):
    """typeguard's loader compiles the patched text itself, so that code is numbered as that text:
    the report shows that text, as the oracle does."""
    scene = runs["scene"]
    (tmp_path / ".coveragerc").write_text(WITH_PLUGIN)
    program = str(runs["tmp"] / "program.py")
    coverage(scene, tmp_path, "run", program, str(scene.rule), str(scene.cache), TYPEGUARD_HOOK="1")
    coverage(scene, tmp_path, "json", "-o", "report.json")
    got = entry(json.loads((tmp_path / "report.json").read_text()), "shapes")
    want = entry(runs["oracle"], "shapes")
    assert got == want
    assert "    radius = _clamp(radius)\n" in runs["unfolded"]["shapes"][0]


def test_a_data_file_without_its_records_is_reported_by_coverage_itself(runs, tmp_path):
    """The documented limit: the records live beside the data file; moved alone, the data reports
    as coverage reads the file (as without the plugin)."""
    scene = runs["scene"]
    (tmp_path / ".coveragerc").write_text(WITH_PLUGIN)
    (tmp_path / ".coverage").write_bytes((runs["tmp"] / "measured" / ".coverage").read_bytes())
    coverage(scene, tmp_path, "json", "-o", "report.json")
    report = json.loads((tmp_path / "report.json").read_text())
    assert entry(report, "shapes") == entry(runs["unplugged"], "shapes")


def test_untouched_code_counts_as_coverage_counts_it():
    """The reporter's rule (code lines, prologues, first lines, docstrings, exclusions) against
    coverage's parser, on files no rule changes: astpatch's own modules and some of the stdlib's."""
    from coverage.parser import PythonParser

    from astpatch.coverage import PatchedFileReporter, Record, code_lines

    exclude = r"#\s*(pragma|PRAGMA)[:\s]?\s*(no|NO)\s*(cover|COVER)"
    stdlib = Path(json.__file__).parent.parent
    paths = sorted(Path(__file__).parent.parent.glob("astpatch/**/*.py")) + \
        [stdlib / name for name in ("argparse.py", "dataclasses.py", "json/decoder.py", "functools.py", "typing.py")]
    for path in paths:
        source = path.read_bytes()
        parser = PythonParser(text=source.decode(), exclude=exclude)
        parser.parse_source()
        lines = sorted(code_lines(compile(source, str(path), "exec", dont_inherit=True)))
        reporter = PatchedFileReporter(str(path), source, Record(str(path), source, "", [], lines), exclude)
        assert reporter.lines() == parser.statements, path
        assert reporter.excluded_lines() == parser.excluded, path
        assert reporter.translate_lines(range(1, len(source.splitlines()) + 1)) == \
            parser.translate_lines(range(1, len(source.splitlines()) + 1)), path
        assert reporter.source() == source.decode()
