"""Stand-ins for stdlib modules that a dependency imports eagerly but rarely uses.
Does no I/O of its own; loading a module on demand is the only effect.

paho-mqtt imports `hashlib` (for websockets), `urllib.request` (for an HTTP/SOCKS proxy,
and only with PySocks installed) and `ssl` (for TLS) when it is imported. Between them
they map OpenSSL and pull in `http.client` and the `email` package: about 7 MB of RSS
on a device that talks plain MQTT to a local broker, more than ocirt's own code.

`defer(name)` puts a stand-in module in `sys.modules`. Whoever imports the name gets the
stand-in; the real module is imported on the first attribute access, by whichever
thread gets there first (under a lock), and the stand-in forwards to it from then on.
Nothing changes in behaviour, only when the memory is spent.

importlib's LazyLoader does the same job but is not thread-safe in Python 3.11, and the
daemon's command threads may touch `hashlib` for the first time together.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from typing import Any

# What paho-mqtt imports at once and uses only for TLS, websockets and HTTP proxies.
PAHO_RARELY_USED = ("ssl", "hashlib", "urllib.request")

# Exception classes that code names in `except` clauses. Until the module is loaded
# nothing can raise them (no TLS socket exists without ssl), so a private class that
# nothing raises answers instead, and naming them does not load the module: paho names
# ssl's in every socket read that would block. Once loaded, the real classes answer.
_UNRAISED = {"ssl": frozenset({"SSLError", "SSLWantReadError", "SSLWantWriteError"})}
_placeholders: dict[tuple[str, str], type[Exception]] = {}

_load_lock = threading.RLock()


class _Deferred(types.ModuleType):
    """A module name whose real module is imported on first use."""

    _real: types.ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        # Only called for attributes the stand-in does not have itself: everything.
        real = self._real
        if real is None:
            if attr in _UNRAISED.get(self.__name__, ()):
                return _placeholder(self.__name__, attr)
            real = _load(self)
        return getattr(real, attr)

    def __dir__(self) -> list[str]:
        return dir(self._real if self._real is not None else _load(self))


def _placeholder(module: str, name: str) -> type[Exception]:
    with _load_lock:
        found = _placeholders.get((module, name))
        if found is None:
            found = type(name, (Exception,), {"__module__": f"{module} (not loaded)"})
            _placeholders[(module, name)] = found
        return found


def _load(stand_in: _Deferred) -> types.ModuleType:
    with _load_lock:
        if stand_in._real is not None:
            return stand_in._real
        name = stand_in.__name__
        # The real import must not find the stand-in; modules imported later get the
        # real module, earlier importers keep the stand-in, which forwards.
        if sys.modules.get(name) is stand_in:
            del sys.modules[name]
        try:
            real = importlib.import_module(name)
        except BaseException:
            sys.modules.setdefault(name, stand_in)
            raise
        stand_in._real = real
        return real


def defer(*names: str) -> None:
    """Put stand-ins for `names` that are not imported yet; a name already imported,
    or one that does not exist, is left alone."""
    with _load_lock:
        for name in names:
            if name in sys.modules:
                continue
            # find_spec imports the parent package of a dotted name.
            if importlib.util.find_spec(name) is None:
                continue
            stand_in = _Deferred(name)
            sys.modules[name] = stand_in
            parent, _, child = name.rpartition(".")
            if parent:
                # `import a.b` binds `a` and reads `a.b`: the package must carry it.
                setattr(sys.modules[parent], child, stand_in)


def is_loaded(name: str) -> bool:
    """True when the real module behind `name` has been imported."""
    module = sys.modules.get(name)
    if module is None:
        return False
    return not isinstance(module, _Deferred) or module._real is not None
