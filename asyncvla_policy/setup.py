"""Build script for asyncvla_policy (ament_python; also installable with plain pip)."""
from setuptools import find_packages, setup

PACKAGE = "asyncvla_policy"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml", "README.md"]),
    ],
    # asyncvla_core (a sibling package of this repository) is required too.
    install_requires=["numpy", "opencv-python-headless>=4.8", "torch>=2.1", "transformers>=5.0",
                      "peft>=0.15", "safetensors>=0.4"],
    # The optional expert runtimes (expert_runtime): each imports its backend when it is built.
    extras_require={"onnx": ["onnx", "onnxruntime", "onnxscript"],
                    "openvino": ["openvino", "openvino-telemetry", "nncf"],
                    "torchao": ["torchao"]},
    zip_safe=True,
    maintainer="AsyncVLA maintainers",
    maintainer_email="maintainers@asyncvla.dev",
    description="The AsyncVLA policy runtime (PyTorch, no ROS): VL feature extractor, sensor "
                "encoder, action expert, inference plan, checkpoints and the expert's runtimes.",
    license="Apache-2.0",
)
