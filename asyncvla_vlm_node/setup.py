"""Build script for asyncvla_vlm_node (ament_python; also installable with plain pip)."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "asyncvla_vlm_node"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="AsyncVLA maintainers",
    maintainer_email="maintainers@asyncvla.dev",
    description="AsyncVLA VLM node (camera views + task prompt to latched VL features, Qwen2.5-VL).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "vlm_node = asyncvla_vlm_node.vlm_node:main",
        ],
    },
)
