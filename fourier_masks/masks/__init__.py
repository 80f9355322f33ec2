"""Learning Fourier masks of frozen classifiers.

``options``       the options of mask learning and their learning-rate schedules
``objective``     filtering, the losses, the clean reference, masked accuracy
``protocol``      keep, halving and stop rules, and how each seed ended (status)
``state``         what changes while learning; projected Adam and back-offs
``checkpoint``    the tensors-only checkpoint a mask job saves and resumes from
``learning``      the loop: ``learn_masks`` (masks shared by a dataset, Karantzas et al.'s method)
``single_image``  one mask per image
"""
