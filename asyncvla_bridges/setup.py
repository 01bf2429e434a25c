"""Build script for asyncvla_bridges (ament_python; also installable with plain pip)."""
from setuptools import find_packages, setup

PACKAGE = "asyncvla_bridges"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml", "README.md", "MECA500.md"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="AsyncVLA maintainers",
    maintainer_email="maintainers@asyncvla.dev",
    description="The hardware interfaces: the lab's camera (ZMQ), robot state (ZMQ) and force/OCT "
                "(UDP) senders as standard ROS 2 messages, with sender clocks mapped to local "
                "time; and the Meca500 driver (mecademicpy).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "camera_bridge = asyncvla_bridges.camera_bridge:main",
            "robot_bridge = asyncvla_bridges.robot_bridge:main",
            "sensor_bridge = asyncvla_bridges.sensor_bridge:main",
            "meca500_driver = asyncvla_bridges.meca500.driver_node:main",
        ],
    },
)
