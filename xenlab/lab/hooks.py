"""Hooks: the small functions a student replaces to fix a stage.

Each hook has a :class:`HookSpec`: its name, the stage it belongs to, a
docstring contract (inputs, what it must return, what it may call), the
2007 default, the reference fix, and a validator for what it returns.
``Hooks`` holds the current choice per hook; the kernel calls hooks only
through :meth:`Hooks.call`, which turns a student's mistake (an exception, a
wrong return type, a wrong value) into a :class:`HookError` that names the hook
and what it returned, never a traceback from deep inside the model.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable


class HookError(Exception):
    """A hook raised or returned something its contract does not allow."""

    def __init__(self, hook: str, message: str):
        self.hook = hook
        super().__init__(f"hook {hook!r}: {message}")


@dataclass
class HookSpec:
    name: str
    stage: str
    default: Callable            # the 2007 behaviour
    reference: Callable          # the fix (what `--fix` and the answer key use)
    doc: str
    validate: Callable[[Any], str | None] | None = None   # returns an error message or None

    @property
    def params(self) -> list[str]:
        return list(inspect.signature(self.default).parameters)


SPECS: dict[str, HookSpec] = {}


def _is_kernel_stop(e: Exception) -> bool:
    from ..kernel.kcpu import KernelStop
    return isinstance(e, KernelStop)


def valid_pfn_list(pfns):
    """A ``validate`` for hooks that return None or a list of PFNs."""
    if pfns is None:
        return None
    if not isinstance(pfns, (list, tuple)) or not all(isinstance(p, int) for p in pfns):
        return "expected None or a list of PFNs (ints)"
    return None


def hook(name: str, *, stage: str, reference: Callable, validate=None):
    """Declare the decorated function as the 2007 default of hook ``name``."""
    def deco(default):
        SPECS[name] = HookSpec(name, stage, default, reference,
                               inspect.cleandoc(default.__doc__ or ""), validate)
        return default
    return deco


class Hooks:
    """The hooks a boot will call.  Assign a function to replace one::

        stage.hooks.pci_config_mechanism = my_fix
    """

    def __init__(self):
        object.__setattr__(self, "_chosen", {})

    def __getattr__(self, name):
        spec = SPECS.get(name)
        if spec is None:
            raise AttributeError(f"no hook named {name!r}; hooks are: {', '.join(sorted(SPECS))}")
        return self._chosen.get(name, spec.default)

    def __setattr__(self, name, fn):
        spec = SPECS.get(name)
        if spec is None:
            raise AttributeError(f"no hook named {name!r}; hooks are: {', '.join(sorted(SPECS))}")
        if not callable(fn):
            raise HookError(name, f"must be a function, got {type(fn).__name__} {fn!r}")
        try:
            inspect.signature(fn).bind(*spec.params)
        except TypeError:
            raise HookError(name, f"must take ({', '.join(spec.params)}); "
                                  f"{getattr(fn, '__name__', fn)!r} takes "
                                  f"{inspect.signature(fn)}") from None
        self._chosen[name] = fn

    def __dir__(self):
        return sorted(SPECS)

    def reset(self, name: str | None = None):
        """Back to the 2007 default (one hook, or all)."""
        if name is None:
            self._chosen.clear()
        else:
            self._chosen.pop(name, None)

    def use_reference(self, stage: str | None = None):
        """Install the reference fix for every hook (of one stage)."""
        for spec in SPECS.values():
            if stage is None or spec.stage == stage:
                self._chosen[spec.name] = spec.reference

    def is_default(self, name: str) -> bool:
        return self.__getattr__(name) is SPECS[name].default

    def which(self) -> dict[str, str]:
        """For each hook: 'default', 'reference' or 'student'."""
        out = {}
        for name, spec in SPECS.items():
            fn = self.__getattr__(name)
            out[name] = ("default" if fn is spec.default else
                         "reference" if fn is spec.reference else "student")
        return out

    def call(self, name: str, *args):
        """Call a hook for the kernel, checking what it returns against its contract."""
        fn = self.__getattr__(name)
        spec = SPECS[name]
        try:
            result = fn(*args)
        except HookError:
            raise
        except Exception as e:
            if _is_kernel_stop(e):      # a panic or hang inside the hook: the kernel's, not the hook's
                raise
            raise HookError(name, f"raised {type(e).__name__}: {e}") from e
        if spec.validate is not None:
            problem = spec.validate(result)
            if problem:
                raise HookError(name, f"returned {result!r}: {problem}")
        return result

    def __repr__(self):
        return "<Hooks " + ", ".join(f"{k}={v}" for k, v in sorted(self.which().items())) + ">"
