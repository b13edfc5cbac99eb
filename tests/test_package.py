import subprocess
import sys


def test_machine_is_exported_lazily():
    code = ("import sys, xenlab, xenlab.cli; heavy = 'numba' in sys.modules; "
            "m = xenlab.Machine; print(heavy, m.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "Machine"]
