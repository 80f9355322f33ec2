"""Learning Fourier masks of frozen classifiers.

``learning``      masks shared by a dataset (Karantzas et al.'s method): ``learn_masks``, ``masked_accuracy``
``checkpoint``    the tensors-only checkpoint a mask job saves and resumes from
``single_image``  one mask per image
"""
