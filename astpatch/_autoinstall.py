"""Installs astpatch at interpreter start-up, from `astpatch-autoinstall.pth`.

The .pth file that the wheel puts in site-packages runs one line at every start-up of every
Python process of that environment:

    import os; os.environ.get("ASTPATCH_AUTOINSTALL") and __import__("astpatch._autoinstall")

so it costs an environment lookup unless ASTPATCH_AUTOINSTALL is set, which `astpatch run`
does for the program it runs and every process that program starts (`multiprocessing` with
spawn, `subprocess`), the way coverage measures subprocesses. Settings come from the
environment (ASTPATCH_RULES, ASTPATCH_STRICT, ...), which child processes inherit.

`astpatch run` starts a Python program through `run_main()` instead when that interpreter has no
such .pth file (astpatch imported from a checkout, say): the import of this module installs
astpatch, and `run_main()` then runs the program as `python` would have.

Strict mode holds here too. `site` catches what a .pth line raises, prints it and starts the
program anyway, and a SystemExit escaping `site` is a "Fatal Python error" of the start-up; so a
failure to install in strict mode (or a warning that a `-W error` filter raises) is written to
stderr here, and the process ends at once with status 1, before its program runs.
"""

from __future__ import annotations

from ._base import settings

TYPE_CHECKING = False
if TYPE_CHECKING:
    import types
    from typing import NoReturn


def _note(message: str) -> None:
    from ._base.messages import warn_setting

    warn_setting(message)


def _stop(error: Exception, strict: bool) -> NoReturn:
    """Say why this process cannot run its program, and end it (no exception can leave `site`)."""
    import os
    import sys

    from ._base.messages import AstpatchError, AstpatchWarning

    if isinstance(error, (AstpatchError, AstpatchWarning)):
        problem = f"{error}\n"
    else:  # astpatch itself failed: the whole traceback, to report it
        import traceback

        problem = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    if strict:
        why = "ASTPATCH_STRICT=1 runs no program without its rules. Fix the problem above, or unset ASTPATCH_STRICT " \
              "to go on with a warning."
    else:
        why = "warnings are errors here (-W error or PYTHONWARNINGS). Fix the problem above."
    sys.stderr.write(f"{problem}astpatch: this process stops before its program runs (exit status 1): astpatch could "
                     "not be installed at its start-up (ASTPATCH_AUTOINSTALL=1, which `astpatch run` sets for every "
                     f"process it starts), and {why}\n")
    sys.stderr.flush()
    os._exit(1)


def _autoinstall() -> None:
    from ._base.messages import unlocated
    from ._hook.installation import install

    try:
        with unlocated():  # what install() says here is about the environment, not about a line of code
            install()
    except Exception as error:
        from ._base.messages import AstpatchWarning

        strict = settings.flag(settings.STRICT)
        if strict or isinstance(error, AstpatchWarning):
            _stop(error, strict)
        raise  # not strict: as for any .pth line, `site` prints it and the program runs without astpatch


def _switched_on() -> bool:
    try:
        return settings.flag(settings.AUTOINSTALL, _note)
    except Exception as error:  # a -W error filter raised the warning about its value
        _stop(error, strict=False)


if _switched_on():
    _autoinstall()


def run_main(home: str) -> None:
    """Run the program the interpreter was given after `-c <bootstrap>`, as `python` runs it.

    `astpatch run` starts an interpreter that has no astpatch-autoinstall.pth as `python
    [options] -c <bootstrap> PROGRAM [args]`, where PROGRAM is `-m module`, `-c code`, a path or
    `-`; the bootstrap put `home` (where astpatch is) first on sys.path and imported this module,
    which installed astpatch. The program gets the `__main__` module, sys.argv, sys.path[0] and
    the tracebacks that `python [options] PROGRAM [args]` gives it.
    """
    import sys

    sys.path.remove(home)
    argv = sys.argv[1:]
    del sys.orig_argv[len(sys.orig_argv) - len(argv) - 2:len(sys.orig_argv) - len(argv)]  # the bootstrap's
    try:
        _run(argv, sys.modules["__main__"])
    except SystemExit:
        raise
    except BaseException as error:
        _uncaught(error)


def _run(argv: list[str], main: types.ModuleType) -> None:
    import os
    import runpy
    import sys

    first = argv[0] if argv else "-"
    # python puts the program's directory first on sys.path, unless told not to (-P, -I)
    path0 = not getattr(sys.flags, "safe_path", False) and not sys.flags.isolated
    if first == "-m":
        sys.argv = ["-m", *argv[2:]]
        if path0:
            sys.path[0] = os.getcwd()
        runpy._run_module_as_main(argv[1])  # type: ignore[attr-defined]
        return
    if first in ("-c", "-"):
        if first == "-c":
            sys.argv, name, source = ["-c", *argv[2:]], "<string>", argv[1]
        else:  # run as the file <stdin>
            sys.argv, name, source = argv or [""], "<stdin>", sys.stdin.read()
            vars(main).update(__file__=name, __cached__=None)
        if first == "-c" and sys.version_info >= (3, 13):  # python keeps the text of -c code for tracebacks
            import linecache

            linecache.cache[name] = (len(source), None, [line + "\n" for line in source.splitlines()], name)
        exec(compile(source, name, "exec"), main.__dict__)
        return
    sys.argv = argv
    import zipfile

    if os.path.isdir(first) or zipfile.is_zipfile(first):
        if path0:
            sys.path[0] = os.path.abspath(first)
        runpy._run_module_as_main("__main__", alter_argv=False)  # type: ignore[attr-defined]
        return
    filename = os.path.abspath(first)
    try:
        with open(filename, "rb") as file:
            source_bytes = file.read()
    except OSError as error:
        sys.stderr.write(f"{sys.orig_argv[0]}: can't open file {filename!r}: [Errno {error.errno}] {error.strerror}\n")
        raise SystemExit(2)
    if path0:
        sys.path[0] = os.path.dirname(os.path.realpath(filename))
    from importlib.machinery import SourceFileLoader

    vars(main).update(__file__=filename, __cached__=None, __loader__=SourceFileLoader("__main__", filename))
    exec(compile(source_bytes, filename, "exec"), main.__dict__)


def _uncaught(error: BaseException) -> NoReturn:
    """What python does with an exception that ends the program, showing none of the bootstrap's frames."""
    import os
    import sys

    traceback = error.__traceback__
    while traceback is not None and traceback.tb_frame.f_code.co_filename == __file__:
        traceback = traceback.tb_next
    sys.excepthook(type(error), error.with_traceback(traceback), traceback)
    if isinstance(error, KeyboardInterrupt):  # python ends with SIGINT, so its parent knows
        import signal

        sys.stdout.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    raise SystemExit(1)
