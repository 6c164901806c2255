# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "gr00t_npu_node"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["tests"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.7",
        "numpy",
        "safetensors",
        "tokenizers",
        "jinja2",
        "opencv-python-headless",
        "pillow",
        "rosbags",
        "pyyaml",
    ],
    extras_require={
        # Needs the CANN runtime installed and sourced (set_env.sh) first: without it, torch-npu breaks `import torch`.
        "npu": ["torch-npu==2.13.0"],
        "bag": ["av", "pyarrow", "tqdm"],
    },
    zip_safe=True,
    maintainer="gr00t_npu_node maintainers",
    description="ROS 2 node running NVIDIA GR00T N1.6 on Ascend NPU, CUDA or CPU",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "gr00t_node = gr00t_npu_node.ros.node:main",
            "gr00t-npu-bench = gr00t_npu_node.benchmarks.inference:main",
            "gr00t-npu-bag = gr00t_npu_node.bag.cli:main",
            "gr00t-npu-create-tiny = gr00t_npu_node.tiny:main",
        ],
    },
)
