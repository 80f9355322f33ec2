"""Single-image masks, band shares and mask decodability on cases with known answers."""

import numpy as np
import pytest
import torch
from torch import nn

from fourier_masks.analysis.anchors import plane_waves
from fourier_masks.analysis.single_image import band_share_table, mask_decodability
from fourier_masks.errors import InputError
from fourier_masks.masks.single_image import learn_single_image_masks
from fourier_masks.models.networks import make_model, predict
from fourier_masks.spectrum import apply_mask, lowpass_mask, reflect

SIZE, K0 = 16, (1, 2)


class PlaneWaveClassifier(nn.Module):
    """Two classes from the sign of the image's projection on the unit cosine wave at ``K0``."""

    def __init__(self):
        super().__init__()
        self.register_buffer("w", plane_waves(SIZE, SIZE, *K0, torch.zeros(())))

    def forward(self, x):
        s = 20 * (x[:, 0] * self.w).sum((-2, -1))
        return torch.stack([s, -s], dim=1)


def _images(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (0.5 + 0.1 * torch.randn(n, 1, SIZE, SIZE, generator=g)).clamp(0, 1)


def test_single_image_masks_keep_only_what_a_linear_model_reads():
    torch.set_num_threads(1)
    model = PlaneWaveClassifier().eval()
    images = _images(6)
    masks, table = learn_single_image_masks(model, images, lam=0.07, lr=0.05, steps=150, patience=20, device="cpu")
    assert masks.shape == (6, 1, SIZE, SIZE) and masks.dtype == np.float32
    assert table.kept.all() and (table.target.to_numpy() == predict(model, images, batch_size=64).numpy()).all()
    np.testing.assert_allclose(masks, reflect(masks), atol=1e-6)
    masked = apply_mask(images, torch.from_numpy(masks))
    assert torch.equal(predict(model, masked, batch_size=64), predict(model, images, batch_size=64))
    at_k0 = masks[:, 0, K0[0], K0[1]]
    off = np.ones((SIZE, SIZE), dtype=bool)
    off[K0] = off[-K0[0], -K0[1]] = False
    elsewhere = masks[:, 0][:, off]
    assert at_k0.min() > 0.8, f"mask at the model's frequency dropped to {at_k0}"
    assert elsewhere.mean() < 0.1, f"mask elsewhere still averages {elsewhere.mean():.3f}"


def test_single_image_masks_keep_a_cnns_prediction_and_stop_by_patience():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = make_model("small_cnn", 1, 3, [0.5], [0.1], seed=0)
    images = _images(5, seed=1)
    masks, table = learn_single_image_masks(model, images, lam=0.07, lr=0.05, steps=40, patience=2,
                                            batch_size=3, device="cpu")
    assert len(table) == 5 and table.kept.all() and (table.density < 1).all()
    masked = apply_mask(images, torch.from_numpy(masks))
    assert torch.equal(predict(model, masked, batch_size=64), predict(model, images, batch_size=64))
    with pytest.raises(InputError, match="lr"):
        learn_single_image_masks(model, images, lam=0.07, lr=0, steps=40, patience=2, device="cpu")


def test_band_share_table_counts_images_with_more_energy_in_a_band():
    low = np.broadcast_to(lowpass_mask(SIZE, SIZE, 3.9), (5, 1, SIZE, SIZE))
    high = 1.0 - low
    table = band_share_table(low, high, [0, 4, 8, 11.4])
    assert table.share_a_greater.tolist() == [1.0, 0.0, 0.0] and table.n_images.eq(5).all()
    assert table.r_lo.tolist() == [0, 4, 8] and table.mean_energy_a[0] == pytest.approx(1.0)
    same = band_share_table(low, low, 4)
    assert (same.share_a_greater == 0).all() and len(same) == 4
    with pytest.raises(InputError, match="radial_edges"):
        band_share_table(low, high, [3, 1])


def test_decodability_of_masks_that_encode_the_class():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 20)
    masks = np.stack([lowpass_mask(8, 8, 1.5 + 1.5 * k) for k in labels])[:, None]
    masks = np.clip(masks + 0.2 * rng.standard_normal(masks.shape), 0, 1)
    result = mask_decodability(masks, labels, seed=0)
    assert result["chance"] == pytest.approx(1 / 3) and result["n_splits"] == 5
    assert result["accuracy"] >= 0.9, result
    assert abs(result["scrambled_accuracy"] - result["chance"]) < 0.2, result
    with pytest.raises(InputError, match="class counts"):
        mask_decodability(masks[:3], labels[:3])
