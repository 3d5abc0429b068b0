"""The rules this project ships: astpatch finds them through the `astpatch.rules` entry point."""

from astpatch import AddExceptTypes, Rule

RULES = [
    Rule(
        id="example-pickler-valueerror",
        summary="Turn ValueError into Bypass in pickler.Pickler.dumps",
        module="pickler",
        target="Pickler.dumps",
        edit=AddExceptTypes(add=("ValueError",), converts_to="Bypass"),
        upstream="pickler 2.0 (example)",
    ),
]
