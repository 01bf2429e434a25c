"""Stage 1 / stage 2 training, evaluation and their CLIs (ROS-free; runs under torchrun).

* ``config``        - TrainConfig (JSON round trip, validation, overrides)
* ``trainer``       - Trainer: the loop, DDP, checkpoints (policy + adapter + resumable state)
* ``features``      - stage-1 VL feature providers (in-memory extractor, cache adapter)
* ``sampling``      - data order (DistributedSampler) and VL feature staleness (reuse)
* ``schedule``      - warmup + cosine learning-rate factor
* ``state_io``      - optimiser state as safetensors + JSON
* ``evaluate``      - metrics in physical units and plots
* (``asyncvla_training.data.synthetic``: generated episodes with a learnable relation, for tests and smoke runs)
* ``cli``           - ``asyncvla-train`` and ``asyncvla-eval``
"""
