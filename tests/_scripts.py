"""Import a script that is not in a package (bench/, tests/workers/) by its path, once per process."""
import functools
import importlib.util
import sys


@functools.cache
def load_script(path, name):
    """The module of the script at `path`, registered as `sys.modules[name]` (dataclasses and pickling
    look a class's module up by name); executed once however many tests ask for it."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
