"""The public surface is exactly `gemlib.__all__`, and importing gemlib stays light."""

from __future__ import annotations

import subprocess
import sys

import gemlib


def test_all_names_exist_and_public_names_are_listed() -> None:
    for name in gemlib.__all__:
        assert hasattr(gemlib, name), name
    # In a fresh interpreter, so submodules imported by other tests do not count.
    code = (
        "import types, gemlib; print(sorted(n for n, v in vars(gemlib).items() "
        "if not n.startswith('_') and not isinstance(v, types.ModuleType)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert eval(out.stdout) == sorted(set(gemlib.__all__) - {"__version__"})


def test_importing_gemlib_does_not_import_litellm_or_configure_logging() -> None:
    code = (
        "import sys, logging; import gemlib; "
        "print('litellm' in sys.modules, logging.getLogger().handlers)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False []"
