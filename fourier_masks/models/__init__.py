"""Classifiers: building, training, reading, writing and acquiring them.

``networks``     the package's architectures, builders by name, ``freeze``/``predict``/``accuracy``
``safe_load``    tensors-only ``torch.load`` (a data file never runs code)
``files``        the model file format every rule shares: ``save_model``, ``load_model``
``layout``       the memory layout a model runs in (channels-last where it gives the same logits)
``fusion``       eval-mode batch norm folded into convolutions for frozen models
``programs``     TorchScript archives and torch.export programs, checked before they run
``zoo``          the RobustBench model zoo
``checkpoints``  the user's own state dicts fitted to an architecture
``sources``      model files fetched by URL with a SHA-256 check
``acquire``      a config's model entries written as model files
``preflight``    what a config's models need, checked before any job
``training``     training regimes (standard, adversarial, noise, geometric)
``attacks``      PGD attacks used by adversarial training and evaluation, and AutoAttack
``threat``       the attack and budget of each model's robust accuracy (torch-free)
"""
