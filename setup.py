"""Build hook only (metadata lives in pyproject.toml): wheels carry the top-level ``recipes/`` and
``rewards/`` folders as ``dlrl/_shipped/…`` so shipped recipes and ``dlrl:NAME`` rewards work after
``pip install`` (see dlrl/shipped.py). Editable installs read the checkout's folders directly."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = {"recipes": ("*.yaml", "*.yml", "*.md"), "rewards": ("*.py", "*.md")}


class BuildPyWithShipped(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        root = Path(__file__).resolve().parent
        for folder, patterns in SHIPPED.items():
            for pattern in patterns:
                for src in sorted((root / folder).rglob(pattern)):
                    if "__pycache__" in src.parts:
                        continue
                    dst = Path(self.build_lib) / "dlrl" / "_shipped" / src.relative_to(root)
                    self.mkpath(str(dst.parent))
                    self.copy_file(str(src), str(dst))


setup(cmdclass={"build_py": BuildPyWithShipped})
