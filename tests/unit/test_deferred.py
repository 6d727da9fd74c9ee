"""ocirt.deferred: stand-in modules that load on first use. Each case runs in a fresh
interpreter, because this one has long imported everything."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def run(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_module_loads_on_first_attribute_access() -> None:
    out = run(
        """
        import sys
        from ocirt import deferred
        deferred.defer("hashlib")
        import hashlib
        print(deferred.is_loaded("hashlib"), "_hashlib" in sys.modules)
        digest = hashlib.sha256(b"abc").hexdigest()
        print(deferred.is_loaded("hashlib"), digest[:12])
        import hashlib as again
        print(again is sys.modules["hashlib"], type(again).__name__)
        """
    )
    assert out.splitlines() == ["False False", "True ba7816bf8f01", "True module"]


def test_dotted_name_is_reachable_through_its_package() -> None:
    out = run(
        """
        import sys
        from ocirt import deferred
        deferred.defer("urllib.request")
        import urllib.request
        print("http.client" in sys.modules, deferred.is_loaded("urllib.request"))
        print(urllib.request.Request("http://127.0.0.1/x").host)
        from urllib.request import Request
        print(Request is urllib.request.Request, "http.client" in sys.modules)
        """
    )
    assert out.splitlines() == ["False False", "127.0.0.1", "True True"]


def test_imported_and_unknown_names_are_left_alone() -> None:
    out = run(
        """
        import sys, json
        from ocirt import deferred
        before = sys.modules["json"]
        deferred.defer("json", "no_such_module_here")
        print(sys.modules["json"] is before, "no_such_module_here" in sys.modules)
        """
    )
    assert out.splitlines() == ["True False"]


def test_first_use_from_many_threads_loads_once() -> None:
    out = run(
        """
        import sys, threading
        from ocirt import deferred
        deferred.defer("hashlib")
        import hashlib
        seen, start = [], threading.Barrier(8)
        def use():
            start.wait()
            seen.append(hashlib.sha256)
        threads = [threading.Thread(target=use) for _ in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        print(len(seen), len({id(f) for f in seen}), seen[0] is sys.modules["hashlib"].sha256)
        """
    )
    assert out.splitlines() == ["8 1 True"]


def test_failed_load_raises_and_can_be_retried(tmp_path: Path) -> None:
    (tmp_path / "flaky_mod.py").write_text(
        "import builtins\nif not getattr(builtins, 'flaky_ok', False):\n"
        "    raise ImportError('not yet')\nVALUE = 42\n"
    )
    out = run(
        f"""
        import builtins, sys
        sys.path.insert(0, {str(tmp_path)!r})
        from ocirt import deferred
        deferred.defer("flaky_mod")
        import flaky_mod
        try:
            flaky_mod.VALUE
        except ImportError as exc:
            print(exc, type(sys.modules["flaky_mod"]).__name__)
        builtins.flaky_ok = True
        print(flaky_mod.VALUE, deferred.is_loaded("flaky_mod"))
        """
    )
    assert out.splitlines() == ["not yet _Deferred", "42 True"]


def test_daemon_defers_then_paho_client_module_leaves_tls_and_hashing_unloaded() -> None:
    out = run(
        """
        from ocirt.daemon.main import defer_unused_modules
        defer_unused_modules()  # what run_daemon does first
        import ocirt.things.mqtt
        from ocirt import deferred
        loaded = ("_ssl", "_hashlib", "http.client", "email")
        print(sorted(m for m in loaded if deferred.is_loaded(m)))
        print([deferred.is_loaded(m) for m in deferred.PAHO_RARELY_USED])
        """
    )
    assert out.splitlines() == ["[]", "[False, False, False]"]


def test_importing_the_paho_client_module_installs_no_stand_ins() -> None:
    # Only the composition root changes interpreter-wide state; an importer of the
    # adapter (a test, a tool) gets the real modules.
    out = run(
        """
        import sys
        import ocirt.things.mqtt
        print([type(sys.modules[m]).__name__ for m in ("ssl", "hashlib")])
        """
    )
    assert out.splitlines() == ["['module', 'module']"]


def test_naming_ssl_exceptions_does_not_load_ssl_until_it_is_used() -> None:
    out = run(
        """
        import sys
        from ocirt import deferred
        deferred.defer("ssl")
        import ssl
        # What paho does on every socket read that would block, on a plain TCP socket.
        try:
            raise BlockingIOError()
        except ssl.SSLWantReadError:
            print("wrong handler")
        except ssl.SSLWantWriteError:
            print("wrong handler")
        except BlockingIOError:
            print("blocking", deferred.is_loaded("ssl"), "_ssl" in sys.modules)
        # Once TLS is used, the names are the real classes again.
        context = ssl.create_default_context()
        print(ssl.SSLWantReadError is sys.modules["ssl"].SSLWantReadError)
        try:
            raise sys.modules["ssl"].SSLWantReadError()
        except ssl.SSLWantReadError:
            print("caught real", deferred.is_loaded("ssl"))
        """
    )
    assert out.splitlines() == ["blocking False False", "True", "caught real True"]
