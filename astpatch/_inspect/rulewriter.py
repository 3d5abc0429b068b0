"""The text of a rule file for a whole upstream change: one rule, one `Change` per scope."""

from __future__ import annotations

import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .fromdiff import ScopeChange


def default_id(changes: list[ScopeChange], suffix: str = "from-diff") -> str:
    """From the first change's module and scope: `core-parser-parse-from-diff`."""
    first = changes[0]
    name = f"{first.module.split('.')[-1]}-{first.scope}" if first.scope else first.module.split(".")[-1]
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return f"{slug or 'rule'}-{suffix}"


def file_name(rule_id: str) -> str:
    """The name of the rule file that holds the rule `rule_id`: a Python identifier plus `.py`."""
    return rule_id.replace("-", "_").replace(".", "_") + ".py"


def summary(changes: list[ScopeChange], diff_name: str) -> str:
    modules: dict[str, list[str]] = {}
    for change in changes:
        modules.setdefault(change.module, []).append(change.scope or "top level")
    text = f"Apply {diff_name} to " + "; ".join(f"{m} ({', '.join(s)})" for m, s in modules.items())
    if len(text) > 100:
        text = f"Apply {diff_name} to {len(changes)} scopes in {len(modules)} module(s)"
    return text


def rule_file(changes: list[ScopeChange], *, rule_id: str, gate: str | None, upstream: str, diff_name: str,
              made_by: str | None = None, summary_text: str | None = None, written_for: str | None = None) -> str:
    """The text of a rule file with one rule: one `Change` per scope, in the diff's order. `made_by`
    says what made it (default: `astpatch new --from-diff`); `written_for` is the provenance field."""
    out = [
        f'"""A rule made by {made_by or f"`astpatch new --from-diff {diff_name}`"}.',
        "",
        "Each Change applies the diff's hunks to one scope of a module (a function, a class, or \"\" for",
        "the module's top level), finding them by content, not by line number. The changes are one",
        "upstream fix: they apply together or not at all.",
        '"""',
        "",
        "from astpatch import ApplyHunks, Change, Hunk, Rule",
        "",
        "RULE = Rule(",
        f"    id={rule_id!r},",
        f"    summary={summary_text or summary(changes, diff_name)!r},",
    ]
    if gate:
        out.append(f"    gate={gate!r},")
    out.append(f"    upstream={upstream!r},")
    if written_for:
        out.append(f"    written_for={written_for!r},")
    out.append("    changes=[")
    for change in changes:
        out += ["        Change(", f"            module={change.module!r},", f"            scope={change.scope!r},",
                "            edit=ApplyHunks(hunks=["]
        for hunk in change.hunks:
            out += ["                Hunk(", f"                    header={hunk.header!r},"]
            for name, lines in (("before", hunk.before), ("after", hunk.after)):
                out.append(f"                    {name}=[")
                out += [f"                        {line!r}," for line in lines]
                out.append("                    ],")
            out.append("                ),")
        out += ["            ]),", "        ),"]
    out += ["    ],", ")", ""]
    return "\n".join(out)
