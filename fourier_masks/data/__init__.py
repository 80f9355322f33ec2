"""Datasets, one module per source, all giving a :class:`.dataset.Dataset` of uint8 arrays.

``dataset``  the array container, its files (``save_dataset``, ``load_split``) and checks
``photos``   the embedded default: patches of scikit-image photographs
``planted``  1/f noise whose class lives in a chosen frequency region
``cifar``    CIFAR-10/100; ``imagenet``: ImageNet validation and Imagenette
``folder``   any class-per-folder image tree, and how image files are read
``registry`` ``load_dataset(cfg)`` by ``dataset.name``
``preflight`` shapes, files, folders and digests a config implies, before any image is read
"""
