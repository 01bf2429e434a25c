"""Build script for asyncvla_training (ament_python; also installable with plain pip)."""
from setuptools import find_packages, setup

PACKAGE = "asyncvla_training"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml", "README.md"]),
    ],
    # asyncvla_core and asyncvla_policy (sibling packages of this repository) are required too.
    install_requires=["numpy", "opencv-python-headless>=4.8", "pillow>=10", "matplotlib",
                      "tqdm>=4.60", "torch>=2.1", "peft>=0.15", "safetensors>=0.4",
                      "rosbags>=0.10"],
    extras_require={"lerobot": ["pyarrow>=14"]},
    package_data={PACKAGE: ["data/msgs/*.msg"]},
    zip_safe=True,
    maintainer="AsyncVLA maintainers",
    maintainer_email="maintainers@asyncvla.dev",
    description="AsyncVLA training: datasets from rosbag2 recordings, stage 1/2 training and "
                "evaluation of the asyncvla_policy models, their command-line tools. Runs "
                "without ROS.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "asyncvla-cache-vl = asyncvla_training.data.vl_cache:main",
            "asyncvla-export-lerobot = asyncvla_training.data.lerobot_export:main",
            "asyncvla-train = asyncvla_training.train.train_cli:main",
            "asyncvla-eval = asyncvla_training.train.eval_cli:main",
        ],
    },
)
