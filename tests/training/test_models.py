import pytest
import torch

from training.models import AutoencoderConfig, ConvAutoencoder, VGG16, VGGConfig, count_parameters


def test_autoencoder_shape_range_and_size():
    ae = ConvAutoencoder().eval()
    out = ae(torch.rand(5, 1, 32, 32))
    assert out.shape == (5, 1, 32, 32)
    assert out.min() >= 0 and out.max() <= 1  # sigmoid output
    assert 80_000 < count_parameters(ae) < 100_000  # "about 90k parameters" (PAPER.md)
    assert ae.encoder[-1].out_features == 10  # the 10-dimensional bottleneck


@pytest.mark.parametrize("width, params", [(0.25, 1_879_354), (1.0, 29_903_050)])
def test_vgg_shape_and_width(width, params):
    vgg = VGG16(VGGConfig(width=width)).eval()
    assert vgg(torch.rand(3, 1, 32, 32)).shape == (3, 10)
    assert count_parameters(vgg) == params
    assert VGGConfig(width=width).channels() == [round(c * width) for c in (64, 128, 256, 512)]


def test_latent_noise_is_active_at_inference():
    ae = ConvAutoencoder().eval()
    x = torch.rand(4, 1, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(ae(x), ae(x))
        torch.manual_seed(3)
        a = ae(x)
        torch.manual_seed(3)
        assert torch.equal(a, ae(x))  # seeded noise is reproducible


def test_latent_noise_is_off_with_zero_sigma():
    ae = ConvAutoencoder(AutoencoderConfig(noise_std=0.0)).eval()
    x = torch.rand(4, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(ae(x), ae(x))


def test_noise_scale_follows_sigma():
    torch.manual_seed(0)
    x = torch.rand(64, 1, 32, 32)
    spread = {}
    for sigma in (0.1, 1.0):
        ae = ConvAutoencoder(AutoencoderConfig(noise_std=sigma)).eval()
        ae.load_state_dict(ConvAutoencoder().state_dict())
        with torch.no_grad():
            spread[sigma] = (ae(x) - ae(x)).abs().mean().item()
    assert spread[0.1] < spread[1.0]
