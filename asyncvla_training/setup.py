"""Build script for asyncvla_training (ament_python; also installable with plain pip)."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "asyncvla_training"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
    ],
    # The policy runtime (models, conventions, VL payload, checkpoints) is what the nodes need;
    # reading bags, training, plots and exports are the `train` / `lerobot` extras.
    install_requires=["numpy", "torch>=2.1", "transformers>=5.0", "peft>=0.15", "safetensors>=0.4",
                      "opencv-python-headless>=4.8"],
    extras_require={"train": ["rosbags>=0.10", "pyyaml", "matplotlib", "pillow>=10",
                              "tqdm>=4.60"],
                    "lerobot": ["pyarrow>=14"]},
    package_data={PACKAGE: ["data/msgs/*.msg"]},
    zip_safe=True,
    maintainer="AsyncVLA maintainers",
    maintainer_email="maintainers@asyncvla.dev",
    description="AsyncVLA models and training: VL feature extractor, sensor encoder, action expert, rosbag2 datasets, stage 1/2 training. Runs without ROS.",
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
