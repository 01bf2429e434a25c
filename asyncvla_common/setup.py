"""Build script for asyncvla_common (ament_python; also installable with plain pip)."""
from setuptools import find_packages, setup

PACKAGE = "asyncvla_common"

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
    description="The small ROS kit every AsyncVLA node shares: declared parameters and the specs "
                "several nodes share, QoS, /diagnostics, statistics, the safety gate and watchdogs, "
                "safety status, operator and robot-state inputs, image conversion, spin.",
    license="Apache-2.0",
)
