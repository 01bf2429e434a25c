"""Build script for asyncvla_core (ament_python; also installable with plain pip)."""
from setuptools import find_packages, setup

PACKAGE = "asyncvla_core"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml", "README.md"]),
    ],
    install_requires=["numpy"],
    zip_safe=True,
    maintainer="AsyncVLA maintainers",
    maintainer_email="maintainers@asyncvla.dev",
    description="The facts every AsyncVLA package agrees on, numpy only (no ROS, no torch): units, "
                "views, joints, the state/action layout, rotations, the VL payload and contract, "
                "and the action chunk with its blending, output guard and input checks.",
    license="Apache-2.0",
)
