"""Three real upstream torch changes, each one whole-change rule, against the released wheels.

Each fixture in tests/data is the hunks of one upstream pull request: the diff of a file between
the release before the fix and the release with it, cut down to the pull request's changed lines
(the other changes between two releases belong to other pull requests). `python3 tools/pr_diffs.py`
makes them again from the wheels. What each hunk is:

- pytorch-177558.diff, torch/_dynamo/convert_frame.py, torch 2.11.0 -> 2.12.0:
  1. the new module-level helper `_safe_builtins_dict` (keeps the picklable entries of a builtins
     dict), inserted before `class GraphCaptureOutput`;
  2. the lines added at the end of `GraphCaptureOutput.get_runtime_env` that put the builtins the
     bytecode reads (a `__builtins_dict__` through the helper) into `used_globals`.
- pytorch-166458.diff, torch 2.9.0 -> 2.9.1 (its cherry-pick, #166967), two modules:
  1. torch/_inductor/config.py: the new entry `custom_should_partition_ops`;
  2. torch/_inductor/scheduler.py: `import weakref` removed;
  3. scheduler.py: the registry `_custom_should_partition_fns` and `register_should_partition_rule`
     removed (the config entry replaces them);
  4. `Scheduler.should_partition` reads the config entry instead of the registry.
  Left out: 2.9.1's other changes to scheduler.py (`shared_data_after_reordering_loop`,
  `get_graph_partition_signature`), from other pull requests.
- pytorch-167131.diff ("Only generate compile-time auto-tuning block in the main graph"),
  torch/_inductor/codegen/wrapper.py, torch 2.9.1 -> 2.10.0:
  1. lines appended at the end of `PythonWrapperCodegen.write_kernel_autotune_defs_header`:
     define `get_raw_stream` in the auto-tuning block when torch has `_cuda_getCurrentRawStream`;
  2. lines appended at the end of `SubgraphPythonWrapperCodegen.__init__`: a subgraph shares its
     root graph's auto-tuning block, kernel names and user-defined kernels;
  3. the methods `get_root_graph` and `generate_and_run_autotune_block` (a no-op: only the main
     graph runs the block) appended to `class SubgraphPythonWrapperCodegen`.
  Left out: a `# pyrefly: ignore` comment the same upstream hunk adds to `set_launcher_fn_name`.

Each rule is made from its diff by `astpatch new --from-diff` (with the broken release's wheel as
the source), and checked against a second reading of the diff built hunk by hunk here
(`changes_from_diff`). The oracle for the patched text is the `patch` program applying the same
diff to the broken release's file.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

from astpatch import ApplyHunks, Change, Hunk, Rule
from astpatch._base import outcomes as oc
from astpatch._base.lines import patched_lines, split_lines
from astpatch._engine.names import unresolved_names
from astpatch._engine.rewrite import rewrite
from astpatch._inspect.evaluate import evaluate
from astpatch._inspect.sources import Wheel

pytestmark = pytest.mark.wheels
DATA = Path(__file__).resolve().parent / "data"


def wheel_file(version: str) -> Path:
    directory = os.environ.get("ASTPATCH_TEST_WHEELS")
    if not directory:
        pytest.fail("ASTPATCH_TEST_WHEELS is not set; run `python3 tools/test.py --tier wheels`")
    found = sorted(Path(directory).glob(f"torch-{version}[-+]*.whl"))
    assert found, f"no torch {version} wheel in {directory}"
    return found[0]


def read_wheel(version: str, path: str) -> str:
    with zipfile.ZipFile(wheel_file(version)) as wheel:
        return wheel.read(path).decode("utf-8")


def module_name(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


# The rule built by hand from a diff; `astpatch new --from-diff` is to make it instead.

def changes_from_diff(diff: str, sources: dict[str, str]) -> list[Change]:
    """One ApplyHunks change per scope the diff's hunks touch, in the diff's order.

    A hunk is cut to the innermost function or class (present before and after the diff) outside
    of which it changes nothing, or else kept whole for the module's top level: its old lines
    within that scope's old lines become `before`, its new lines within its new lines `after`.
    """
    found: dict[tuple[str, str], list[Hunk]] = {}
    for path, hunks in parse_diff(diff).items():
        old = sources[path].splitlines()
        new = apply_hunks(old, hunks)
        old_scopes, new_scopes = scope_spans(old), scope_spans(new)
        for header, entries in hunks:
            first = min(o for _, _, o, _ in entries if o is not None)
            last = max(o for _, _, o, _ in entries if o is not None)
            candidates = sorted((q for q in old_scopes if q in new_scopes and old_scopes[q][0] <= last
                                 and first <= old_scopes[q][1]), key=lambda q: (-q.count("."), old_scopes[q][0]))
            for scope in [*candidates, ""]:
                cut = cut_hunk(entries, old_scopes.get(scope, (1, len(old))), new_scopes.get(scope, (1, len(new))))
                if cut is not None:
                    found.setdefault((module_name(path), scope), []).append(Hunk(header=header, **cut))
                    break
    return [Change(module=m, scope=s, edit=ApplyHunks(hunks=h)) for (m, s), h in found.items()]


def parse_diff(diff: str) -> dict[str, list[tuple[str, list[tuple[str, str, int | None, int | None]]]]]:
    """By file: its hunks as (header, [(tag, text, old line number, new line number)])."""
    files: dict[str, list] = {}
    for line in diff.splitlines():
        if line.startswith("+++ b/"):
            hunks = files.setdefault(line[6:], [])
        elif line.startswith("@@"):
            old_no, new_no = (int(n) for n in re.findall(r"[-+](\d+)", line)[:2])
            entries: list[tuple[str, str, int | None, int | None]] = []
            hunks.append((line, entries))
        elif line[:1] in (" ", "-", "+") and not line.startswith("--- a/"):
            tag, text = line[0], line[1:]
            entries.append((tag, text, old_no if tag != "+" else None, new_no if tag != "-" else None))
            old_no += tag != "+"
            new_no += tag != "-"
    return files


def apply_hunks(old: list[str], hunks: list) -> list[str]:
    new, position = [], 0
    for _, entries in hunks:
        start = next(o for _, _, o, _ in entries if o is not None) - 1
        new += old[position:start] + [text for tag, text, _, _ in entries if tag != "-"]
        position = start + sum(tag != "+" for tag, _, _, _ in entries)
    return new + old[position:]


def scope_spans(lines: list[str]) -> dict[str, tuple[int, int]]:
    """(first line, from its first decorator, and last line) of each function and class."""
    spans: dict[str, tuple[int, int]] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                spans[name] = (min([child.lineno, *(d.lineno for d in child.decorator_list)]),
                               child.end_lineno or child.lineno)
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse("\n".join(lines)), "")
    return spans


def cut_hunk(entries: list, old_span: tuple[int, int], new_span: tuple[int, int]) -> dict[str, list[str]] | None:
    """The hunk's lines within the scope, or None when it changes something outside it (or nothing inside)."""
    def side(skip: str, index: int, span: tuple[int, int]) -> tuple[list[str], list[str], list[str]]:
        lines = [(e[index], e[1]) for e in entries if e[0] != skip]
        return ([t for n, t in lines if n < span[0]], [t for n, t in lines if span[0] <= n <= span[1]],
                [t for n, t in lines if n > span[1]])
    old_head, before, old_tail = side("+", 2, old_span)
    new_head, after, new_tail = side("-", 3, new_span)
    if old_head != new_head or old_tail != new_tail or before == after:
        return None
    return {"before": before, "after": after}


# The three pull requests.

class PullRequest:
    def __init__(self, number: int, broken: str, fixed: str, later: dict[str, str]) -> None:
        self.number = number
        self.broken = broken
        self.fixed = fixed
        self.later = later  # release -> the rule's expected status there
        self.diff = (DATA / f"pytorch-{number}.diff").read_text(encoding="utf-8")
        self.paths = list(parse_diff(self.diff))

    def rule(self) -> Rule:
        """The rule `astpatch new --from-diff` makes of the diff, reading the broken release's wheel."""
        return made_rule(self)

    def hand_built(self) -> Rule:
        """The same change built by hand, hunk by hunk (`changes_from_diff`): a second opinion."""
        sources = {path: read_wheel(self.broken, path) for path in self.paths}
        return Rule(id=f"torch-pr-{self.number}", summary=f"pytorch pull request {self.number}",
                    upstream=f"pytorch/pytorch#{self.number}, fixed in torch {self.fixed}",
                    gate=f"torch>={self.broken}", changes=changes_from_diff(self.diff, sources))

    def __repr__(self) -> str:
        return f"pr{self.number}"


_made: dict[int, Rule] = {}


def made_rule(pr: PullRequest) -> Rule:
    """Run `astpatch new --from-diff` on the diff, with the broken release's wheel as the source,
    and load the rule file it writes (once per pull request and test session)."""
    if pr.number not in _made:
        import contextlib
        import io
        import tempfile

        from astpatch._model.rulefiles import load_rule_file
        from astpatch.cli import main

        with tempfile.TemporaryDirectory() as out:
            (Path(out) / "pr.diff").write_text(pr.diff, encoding="utf-8")
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
                status = main(["new", "--from-diff", str(Path(out) / "pr.diff"), "--source", str(wheel_file(pr.broken)),
                               "--id", f"torch-pr-{pr.number}", "--gate", f"torch>={pr.broken}",
                               "--upstream", f"pytorch/pytorch#{pr.number}, fixed in torch {pr.fixed}", "-o", out])
            assert status == 0, printed.getvalue()
            (rule,) = load_rule_file(str(Path(out) / f"torch_pr_{pr.number}.py"))
        _made[pr.number] = rule
    return _made[pr.number]


FIXED = oc.ALREADY_FIXED
BUILTINS = PullRequest(177558, "2.11.0", "2.12.0", {"2.12.0": FIXED, "2.13.0": FIXED})
# From 2.10.0 on, the lines around the change are not the diff's any more: the config entry has new
# entries after it (2.10.0) and before it (2.12.0), and the TYPE_CHECKING imports above the removed
# `import weakref` also import Callable (2.10.0). The lines each hunk adds are there, and the lines it
# removes are not, so each hunk still counts as upstream, and the rule as already-fixed. In 2.11.0
# `should_partition` was rewritten (its names computation moved into `get_op_names`): the diff's
# lines are not there at all, so the rule fails there, as it should: only `--fixed-in` (a gate that
# stops at the first fixed release) turns that into not-applicable.
PARTITION = PullRequest(166458, "2.9.0", "2.9.1", {"2.9.1": FIXED, "2.10.0": FIXED, "2.11.0": oc.FAILED,
                                                   "2.12.0": oc.FAILED, "2.13.0": oc.FAILED})
AUTOTUNE = PullRequest(167131, "2.9.1", "2.10.0", {"2.10.0": FIXED, "2.11.0": FIXED, "2.12.0": FIXED, "2.13.0": FIXED})
PULL_REQUESTS = [BUILTINS, PARTITION, AUTOTUNE]


def patch_program(pr: PullRequest, tmp_path: Path) -> dict[str, str]:
    """The oracle: each file of the broken release as the `patch` program patches it with the diff."""
    for path in pr.paths:
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(read_wheel(pr.broken, path), encoding="utf-8", newline="")
    (tmp_path / "pr.diff").write_text(pr.diff, encoding="utf-8")
    done = subprocess.run(["patch", "-p1", "--batch", "--no-backup-if-mismatch", "-i", "pr.diff"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0 and "fuzz" not in done.stdout, done.stdout + done.stderr
    patched = {}
    for path in pr.paths:
        with open(tmp_path / path, encoding="utf-8", newline="") as f:
            patched[path] = f.read()
    return patched


def outcomes_in(pr: PullRequest, version: str, rule: Rule) -> dict[str, tuple[oc.Outcome, str]]:
    """By module: the rule's outcome and the patched text, on the release's source from its wheel.

    A one-module rule goes through the rewrite engine; the two-module one through `evaluate`,
    which decides each module with the other's outcome, as the import hook does.
    """
    if len(pr.paths) == 1:
        (path,) = pr.paths
        text = read_wheel(version, path)
        result = rewrite(module_name(path), path, text, [rule], {"torch": version})
        (outcome,) = result.outcomes
        if outcome.status == oc.APPLIED:
            assert result.code is not None  # the engine compiled the patched module
        return {module_name(path): (outcome, "".join(patched_lines(split_lines(text), result.spans)))}
    reports = evaluate([rule], Wheel(str(wheel_file(version))))
    return {r.module: (r.outcomes[0][1], "".join(r.after)) for r in reports}


def test_each_hunk_becomes_a_change_of_its_scope():
    """Function hunks are cut to the function, methods appended to a class edit the class body,
    and the rest (a new helper, removed imports and definitions, a config entry) the top level."""
    def parts(pr: PullRequest) -> list[tuple[str, str, int]]:
        return [(c.module, c.scope, len(c.edit.hunks)) for c in pr.rule().changes]  # type: ignore[attr-defined]

    assert parts(BUILTINS) == [("torch._dynamo.convert_frame", "", 1),
                               ("torch._dynamo.convert_frame", "GraphCaptureOutput.get_runtime_env", 1)]
    assert parts(PARTITION) == [("torch._inductor.config", "", 1), ("torch._inductor.scheduler", "", 2),
                                ("torch._inductor.scheduler", "Scheduler.should_partition", 1)]
    wrapper = "torch._inductor.codegen.wrapper"
    assert parts(AUTOTUNE) == [(wrapper, "PythonWrapperCodegen.write_kernel_autotune_defs_header", 1),
                               (wrapper, "SubgraphPythonWrapperCodegen.__init__", 1),
                               (wrapper, "SubgraphPythonWrapperCodegen", 1)]
    # A hunk at a function's end keeps none of the blank lines and decorators after it.
    (hunk,) = AUTOTUNE.rule().changes[0].edit.hunks  # type: ignore[attr-defined]
    assert hunk.before == ('            """', "        )")
    assert hunk.after[-2:] == ("        except (ImportError, AttributeError):", "            pass")


@pytest.mark.parametrize("pr", PULL_REQUESTS, ids=str)
def test_the_rule_patches_the_broken_release_as_the_patch_program_does(pr, tmp_path):
    expected = patch_program(pr, tmp_path)
    found = outcomes_in(pr, pr.broken, pr.rule())
    assert sorted(found) == sorted(module_name(p) for p in pr.paths)
    for path in pr.paths:
        outcome, text = found[module_name(path)]
        assert outcome.status == oc.APPLIED, outcome.reason
        assert text == expected[path]
        assert text != read_wheel(pr.broken, path)


@pytest.mark.parametrize("pr, version", [(pr, v) for pr in PULL_REQUESTS for v in pr.later], ids=str)
def test_the_fixed_release_and_every_later_one(pr, version):
    """Already fixed where upstream's lines are the diff's; where later releases changed the lines
    around the change, the rule does not apply, and leaves the source as it is."""
    for module, (outcome, text) in outcomes_in(pr, version, pr.rule()).items():
        assert outcome.status == pr.later[version], f"{module}: {outcome.reason}"
        if outcome.status == oc.FAILED:
            assert "the edit does not apply" in outcome.reason and "is not where the diff expects it" in outcome.reason
        assert text == read_wheel(version, module.replace(".", "/") + ".py")


@pytest.mark.parametrize("pr", PULL_REQUESTS, ids=str)
def test_the_patched_modules_compile(pr):
    for module, (outcome, text) in outcomes_in(pr, pr.broken, pr.rule()).items():
        assert outcome.status == oc.APPLIED, outcome.reason
        compile(text, module, "exec", dont_inherit=True)


def test_the_names_check_sees_the_helper_the_patched_method_calls(tmp_path):
    """The whole change passes the engine's names check; without its helper it does not."""
    (path,) = BUILTINS.paths
    text = read_wheel(BUILTINS.broken, path)
    upstream = compile(text, path, "exec", dont_inherit=True)
    whole = rewrite(module_name(path), path, text, [BUILTINS.rule()], {"torch": BUILTINS.broken})
    assert [o.status for o in whole.outcomes] == [oc.APPLIED]
    assert unresolved_names(whole.code, upstream) == []
    (_, helper_entries), _ = parse_diff(BUILTINS.diff)[path]
    helper = "".join(line + "\n" for tag, line, _, _ in helper_entries if tag == "+")
    assert helper.startswith("def _safe_builtins_dict(")
    patched = patch_program(BUILTINS, tmp_path)[path]
    without_helper = compile(patched.replace(helper, ""), path, "exec", dont_inherit=True)
    assert unresolved_names(without_helper, upstream) == ["_safe_builtins_dict"]


def test_the_patched_method_without_its_helper_is_refused():
    (path,) = BUILTINS.paths
    text = read_wheel(BUILTINS.broken, path)
    rule = BUILTINS.rule()
    (method,) = [c for c in rule.changes if c.scope]
    alone = Rule(id="torch-pr-177558-method-only", summary="s", upstream="u", gate=rule.gate, changes=[method])
    result = rewrite(module_name(path), path, text, [alone], {"torch": BUILTINS.broken})
    (outcome,) = result.outcomes
    assert outcome.status == oc.FAILED and result.code is None
    assert outcome.reason == "the patched code reads names the module does not define: _safe_builtins_dict"


@pytest.mark.parametrize("pr", PULL_REQUESTS, ids=str)
def test_new_from_diff_makes_the_rule_a_hand_built_reading_of_the_diff_makes(pr, tmp_path):
    """Two readings of the same diff: the command's and this module's own, hunk by hunk; both give
    the same text on the broken release (the `patch` program's), whatever context each keeps."""
    made, by_hand = pr.rule(), pr.hand_built()
    assert [(c.module, c.scope) for c in made.changes] == [(c.module, c.scope) for c in by_hand.changes]
    for version in (pr.broken, *pr.later):
        ours = outcomes_in(pr, version, made)
        theirs = outcomes_in(pr, version, by_hand)
        assert {m: (o.status, t) for m, (o, t) in ours.items()} == {m: (o.status, t) for m, (o, t) in theirs.items()}
