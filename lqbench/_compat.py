"""The few standard-library names lqbench uses that are newer than its oldest Python (3.10).

``tomllib`` is in the standard library from Python 3.11; on 3.10 the same parser is the
``tomli`` package (``tomli; python_version < "3.11"`` in requirements.txt), with the same API.
Import it from here (``from lqbench._compat import tomllib``) so the choice lives in one place
and disappears with Python 3.10.
"""
import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

__all__ = ["tomllib"]
