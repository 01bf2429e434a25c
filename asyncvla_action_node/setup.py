"""Build script for asyncvla_action_node (ament_python; also installable with plain pip)."""
from setuptools import find_packages, setup

PACKAGE = "asyncvla_action_node"

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
    description="AsyncVLA action node (VL features + force/OCT window + robot state to action chunks).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "action_node = asyncvla_action_node.action_node:main",
        ],
    },
)
