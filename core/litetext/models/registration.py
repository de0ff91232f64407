"""Registering EfficientSAM3's student backbones with transformers without importing transformers: `import
litetext` installs a finder that registers them once transformers' auto classes load (light: no torch, no
transformers, no timm imported here)."""

from __future__ import annotations

import sys
from importlib import import_module


class StudentBackboneRegistration:
    """Registers EfficientSAM3's student backbone type (`models/student_backbones.py`) with transformers' auto classes
    as soon as transformers can resolve it, so that transformers alone loads student checkpoints after
    `import litetext`, while `import litetext` imports neither torch nor transformers.

    A finder on `sys.meta_path` that runs the registration after `configuration_auto` (which resolves backbone
    types) or `modeling_utils` (which the student model subclasses) loads, whichever leaves both usable first:
    `modeling_utils` imports `configuration_auto` while it loads itself.
    """

    watched = ("transformers.models.auto.configuration_auto", "transformers.modeling_utils")

    def find_spec(self, name, path=None, target=None):
        if name not in self.watched:
            return None
        import importlib.util

        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return None
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            self.after(name)

        spec.loader.exec_module = exec_module
        return spec

    def after(self, name: str) -> None:
        modeling = sys.modules.get("transformers.modeling_utils")
        if name != "transformers.modeling_utils" and getattr(getattr(modeling, "__spec__", None), "_initializing",
                                                             False):
            return  # modeling_utils is loading and comes back here when it is done
        if self in sys.meta_path:
            sys.meta_path.remove(self)
            self.register()

    @staticmethod
    def register() -> None:
        # Importing the module registers the types; a module already being imported does so when it is done.
        import_module("litetext.models.student_backbones")

    @classmethod
    def install(cls) -> None:
        if cls.watched[0] in sys.modules:  # transformers' auto classes came first
            cls.register()
        elif not any(isinstance(finder, cls) for finder in sys.meta_path):
            sys.meta_path.insert(0, cls())


def register_when_transformers_loads() -> None:
    """Register the student backbone type now if transformers' auto classes are loaded, else when they load."""
    StudentBackboneRegistration.install()
