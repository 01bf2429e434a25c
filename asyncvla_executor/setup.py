"""Build script for asyncvla_executor (ament_python; also installable with plain pip)."""
from setuptools import find_packages, setup

PACKAGE = "asyncvla_executor"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml", "README.md", "EXECUTOR.md"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="AsyncVLA maintainers",
    maintainer_email="maintainers@asyncvla.dev",
    description="AsyncVLA chunk executor: action chunks to a setpoint stream at the robot's rate "
                "(twist, pose or joint trajectory), behind the same safety gate and output guard "
                "as the action node.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "executor_node = asyncvla_executor.executor_node:main",
        ],
    },
)
