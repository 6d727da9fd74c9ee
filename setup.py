"""Build glue: the cffi helper module and the per-container monitor executable.

Both live in native/. The monitor is a standalone program (it must outlive the Python
process and stay under 1 MB RSS), so it is linked as an executable and shipped inside
the package as ocirt/libexec/ocirt-monitor.
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent.resolve()
MONITOR_SOURCES = sorted(str(p) for p in (HERE / "native" / "monitor").glob("*.c"))
CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-std=gnu11", "-D_GNU_SOURCE"]


class BuildWithMonitor(build_ext):
    """build_ext that also links native/monitor/*.c into ocirt/libexec/ocirt-monitor."""

    def run(self) -> None:
        super().run()
        if not MONITOR_SOURCES:
            return
        compiler = self.compiler
        if compiler is None:  # pragma: no cover - set by build_ext.run
            raise RuntimeError("no C compiler configured")
        tmp = Path(self.build_temp) / "monitor"
        objects = compiler.compile(
            MONITOR_SOURCES,
            output_dir=str(tmp),
            extra_preargs=CFLAGS,
            include_dirs=[str(HERE / "native" / "monitor")],
        )
        targets = [Path(self.build_lib) / "ocirt" / "libexec"]
        if self.inplace:
            targets.append(HERE / "ocirt" / "libexec")
        for target in targets:
            target.mkdir(parents=True, exist_ok=True)
            # Static: a dynamically linked monitor maps ~1.6 MB of glibc pages; static stays
            # under the 1 MB RSS budget per container.
            compiler.link_executable(
                objects, "ocirt-monitor", output_dir=str(target), extra_postargs=["-static"]
            )
            os.chmod(target / "ocirt-monitor", 0o755)


setup(
    cffi_modules=["native/build_native.py:ffibuilder"],
    cmdclass={"build_ext": BuildWithMonitor},
)
