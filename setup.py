"""Package mapping: the top-level folders become the `remotegrad` package tree.

Metadata lives in pyproject.toml; only the folder-to-package mapping is here, derived with
find_packages so nested folders (worker/engine/, ...) never drop out of a regular install.
"""

from setuptools import find_packages, setup

ROOTS = {"remotegrad": "client", "remotegrad.server": "server",
         "remotegrad.worker": "worker", "remotegrad.proto": "proto",
         "remotegrad.loadtest": "loadtest"}

package_dir = dict(ROOTS)
packages = []
for name, folder in ROOTS.items():
    packages.append(name)
    for sub in find_packages(folder):
        packages.append(f"{name}.{sub}")
        package_dir[f"{name}.{sub}"] = f"{folder}/{sub.replace('.', '/')}"

setup(packages=packages, package_dir=package_dir,
      package_data={"remotegrad.proto": ["*.proto", "*.pyi"]})
