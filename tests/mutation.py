"""Make realistic buggy versions of reference code by editing its source text."""
from __future__ import annotations

import inspect
import itertools
import linecache
import textwrap

_counter = itertools.count()


def mutate(obj, replacements: list[tuple[str, str]]):
    """Return a copy of class/function ``obj`` with each ``old`` replaced by ``new`` once.

    The copy is compiled in the namespace of ``obj``'s module, so it behaves exactly like
    the reference apart from the planted bug.
    """
    src = textwrap.dedent(inspect.getsource(obj))
    for old, new in replacements:
        assert src.count(old) >= 1, f"mutation target {old!r} not found in {obj.__name__}"
        src = src.replace(old, new, 1)
    module = inspect.getmodule(obj)
    ns = dict(vars(module))
    filename = f"<mutant {next(_counter)} of {obj.__name__}>"
    linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)  # so inspect.getsource works
    exec(compile(src, filename, "exec"), ns)
    return ns[obj.__name__]
