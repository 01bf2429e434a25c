"""Build script for asyncvla_bringup (ament_python; also installable with plain pip)."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "asyncvla_bringup"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        ("share/" + PACKAGE + "/launch", glob("launch/*.launch.py")),
        ("share/" + PACKAGE + "/config", glob("config/*.yaml")),
        ("share/" + PACKAGE + "/rqt", glob("rqt/*.perspective")),
        ("share/" + PACKAGE + "/security", glob("security/*.xml")),
        ("share/" + PACKAGE, ["ROBOT_PC.md"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="AsyncVLA maintainers",
    maintainer_email="maintainers@asyncvla.dev",
    description="AsyncVLA launch files and parameter sets for the robot PC, bag replay and split machines.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "record = asyncvla_bringup.record:main",
            "check_params = asyncvla_bringup.param_check:main",
        ],
    },
)
