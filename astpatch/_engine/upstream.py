"""The module's own ("upstream") code for exactly the source bytes that were read and hashed.

A rewrite reuses code objects from the module's upstream code (untouched functions and
definitions), and the result is cached under the hash of the source bytes. So that code must
come from those bytes: the import system's own `get_code` takes the `__pycache__` `.pyc` when it
matches the source's mtime and size (or trusts an unchecked-hash `.pyc` without looking), which
after a same-size edit within the same second, or with a `.pyc` built elsewhere, is older code;
cached under the new hash, it would be served long after the `.pyc` is gone.

A `.pyc` is still used when it provably holds those bytes' code, since compiling a large module
costs tens of milliseconds at every rewrite: a hash-based one (checked or not) when its hash is
that of the bytes; a timestamp one when its mtime and size match and the source has not changed
since well before the `.pyc` was written (its inode change time, which no program can set, older
than the `.pyc`'s mtime by more than the file system's timestamp granularity, as git treats
"racy" entries). Otherwise the bytes are compiled. Nothing is ever written to `__pycache__`.
"""

from __future__ import annotations

import os
import sys
from importlib import _bootstrap_external
from importlib.util import cache_from_source, source_hash

from .._base.evidence import RACY_NS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import CodeType
    from typing import Any

# Its pyc helpers (header checks, unmarshalling) are private, so not in the type stubs.
_pyc: Any = _bootstrap_external

_HASH_BASED = 0b1


def upstream_code(fullname: str, path: str, source: bytes, status: os.stat_result | None = None,
                  optimize: int = -1) -> CodeType:
    """The code of `source`, the bytes read from `path`, as `compile` makes it at `optimize`
    (-1: this interpreter's level): from the module's `.pyc` when it provably holds that code.

    `status` is the source's status taken once the bytes were read (an `fstat` of the file read
    is best); without it the path is statted now, which the caller must call after reading.
    Raises what `compile` raises on source that does not compile.
    """
    level = sys.flags.optimize if optimize == -1 else optimize
    code = _from_pyc(fullname, path, source, status, level)
    if code is not None:
        return code
    return compile(source, path, "exec", dont_inherit=True, optimize=level)


def _from_pyc(fullname: str, path: str, source: bytes, status: os.stat_result | None,
              level: int) -> CodeType | None:
    """The code in the `.pyc` of `path` at optimisation `level`, when it is that of `source`."""
    try:
        pyc_path = cache_from_source(path, optimization="" if level == 0 else level)
        with open(pyc_path, "rb") as f:
            data = f.read()
            written = os.fstat(f.fileno()).st_mtime_ns
    except (NotImplementedError, ValueError, OSError):  # no cache tag, a path it cannot map, no pyc
        return None
    details = {"name": fullname, "path": pyc_path}
    try:
        flags = _pyc._classify_pyc(data, fullname, details)
        if flags & _HASH_BASED:
            _pyc._validate_hash_pyc(data, source_hash(source), fullname, details)
        else:
            if sys.platform == "win32":
                return None  # st_ctime is the creation time there: no evidence of the last change
            if status is None:
                status = os.stat(path)
            changed = max(status.st_ctime_ns, status.st_mtime_ns)
            if status.st_size != len(source) or changed >= written - RACY_NS:
                return None  # changed since it was read, or maybe since the pyc was written
            _pyc._validate_timestamp_pyc(data, int(status.st_mtime), status.st_size, fullname, details)
        code = _pyc._compile_bytecode(memoryview(data)[16:], fullname, pyc_path, path)
    except (ImportError, EOFError, ValueError, TypeError, OSError):  # invalid, stale or unreadable
        return None
    return code
