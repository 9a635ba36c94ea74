"""Name → entry tables for the parts a config chooses by name: data kinds (`cma_tf/kinds/`) and
heads (`cma_tf/heads/`).

A registry belongs to a package; each module of that package registers its entries when it is
imported, and the registry imports every module of the package the first time it is asked for
a name. So adding a data kind or a head is one new file: nothing else lists them. Code outside
the package (a user's own head) registers with `register` before building a config that uses it.
"""

import importlib
import pkgutil

from cma_tf.errors import ConfigError


class Registry:
    """Entries by name, found among the modules of `package` (a dotted name).

    Args:
        package: the package whose modules register entries, e.g. "cma_tf.heads".
        field: the config field that names an entry, for error messages ("config.model.head").
        what: what an entry is, for error messages ("head").
    """

    def __init__(self, package, field, what):
        self.package = package
        self.field = field
        self.what = what
        self._entries = {}
        self._discovered = False

    def register(self, name, entry):
        """Adds `entry` under `name`; a second entry of one name is a programming error."""
        if name in self._entries and self._entries[name] is not entry:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def discover(self):
        """Imports every module of the package once (each registers its own entries)."""
        if self._discovered:
            return
        self._discovered = True
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{self.package}.{module.name}")

    def names(self):
        self.discover()
        return tuple(sorted(self._entries))

    def get(self, name):
        """The entry of `name`; a `ConfigError` listing the registered names otherwise."""
        self.discover()
        if name not in self._entries:
            raise ConfigError(f"{self.field}: unknown {self.what} {name!r} ({', '.join(self.names())})")
        return self._entries[name]

    def __contains__(self, name):
        self.discover()
        return name in self._entries
