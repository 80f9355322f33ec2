"""What learned masks say.

``metrics``       numpy-only metrics of masks: band profiles, frequency-bias summaries, control masks
``evaluation``    held-out accuracy of models with their masks, the controls and other models' masks
``statistics``    bootstrap intervals, effect sizes and permutation tests over seeds
``anchors``       mask-free anchors: Fourier heat maps, low/high-pass cutoff curves
``single_image``  band-by-band comparison and class decoding of single-image masks
"""
