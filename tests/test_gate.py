"""Version gates, including the versions that source and vendor builds carry."""

from __future__ import annotations

import pytest

from astpatch._model.gate import evaluate


@pytest.mark.parametrize("version, selected", [
    ("2.10.0", True),
    ("2.10.1", True),
    ("2.10.0+cu128", True),        # a vendor (CUDA) build of 2.10.0
    ("2.10.0a0+git1234abc", True),  # a source build of the 2.10 branch
    ("2.10.0rc3", True),
    ("2.10.0.dev20251101", True),
    ("2.10.0.post1", True),
    ("2.11.0", False),
    ("2.11.0a0+gitdeadbee", False),  # a source build of the 2.11 branch
    ("2.9.1", False),
    ("2.9.1+cpu", False),
])
def test_release_number_decides(version, selected):
    assert evaluate("torch", ">=2.10,<2.11", version).selected is selected


def test_a_gate_that_names_a_prerelease_compares_the_full_version():
    assert evaluate("torch", ">=2.11.0a0", "2.11.0a0+git1").selected
    assert not evaluate("torch", ">=2.11.0rc1", "2.11.0a0+git1").selected


def test_wildcards_and_no_specifier():
    assert evaluate("torch", "==2.10.*", "2.10.0a0+git1").selected
    assert evaluate("torch", "", "1.0").selected


def test_reasons_say_what_was_compared():
    assert evaluate("torch", ">=2.10", "2.9.1").reason == "torch 2.9.1 is outside the gate torch>=2.10"
    assert evaluate("torch", ">=2.10", None).reason == "torch is not installed (gate torch>=2.10)"
    bad = evaluate("torch", ">=2.10", "not-a-version")
    assert not bad.selected and "is not a PEP 440 version" in bad.reason
    invalid = evaluate("torch", ">>2", "2.10.0")
    assert not invalid.selected and "not a valid PEP 440 specifier" in invalid.reason


SPECIFIERS = [">=2.10", "<2.11", ">=2.10,<2.11", "==2.10.*", "!=2.10.*", "~=2.10", "~=2.10.1", "==2.10", "!=2.10.0",
              ">2.10", "<=2.10", ">2.10.0,<=2.12", "==2.*", "~=2.9.1,!=2.10.0", " >= 2.10 , < 3 ", "==2.10.0.*"]
VERSIONS = ["2.9.1", "2.10", "2.10.0", "2.10.1", "2.10.0+cu128", "2.10.0a0+git1", "2.10.0.post2", "2.10.0.dev1",
            "2.11.0rc1", "2.11.0", "2.12.1", "3.0", "1!2.10.0"]


@pytest.mark.parametrize("specifier", SPECIFIERS)
def test_release_comparisons_agree_with_packaging_specifiers(specifier):
    """The fast release-number evaluator gives what packaging.specifiers gives on the release."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    for version in VERSIONS:
        expected = SpecifierSet(specifier).contains(Version(Version(version).base_version), prereleases=True)
        assert evaluate("torch", specifier, version).selected is expected, (specifier, version)


def test_specifiers_beyond_release_numbers_use_packaging_whole():
    from astpatch._model.gate import _release_clauses

    for specifier in ("===2.10.0", "==2.10.0+cu128", ">=2.11.0rc1", ">=1!2.0", "==2.10.*.*", "<=2.x"):
        assert _release_clauses(specifier) is None, specifier
    assert evaluate("torch", "==2.10.0+cu128", "2.10.0+cu128").selected is False  # base 2.10.0 has no local label
    assert not evaluate("torch", "<=2.x", "2.10.0").selected
