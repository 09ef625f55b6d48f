"""Demo models: the weight jitter that imitates another machine's rounding, and the cached model it jitters."""

from __future__ import annotations

import copy

import pytest
import torch

from gfe_viz.demo_models import WEIGHT_JITTER_ENV, jitter_weights, train_demo_model
from gfe_viz.models import Autoencoder, MLPDecoder, initial_model
from gfe_viz.training import EncodeSettings


def _decoder() -> MLPDecoder:
    torch.manual_seed(0)
    return MLPDecoder(2, 16)


def _weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_without_jitter_the_weights_are_left_alone(monkeypatch):
    monkeypatch.delenv(WEIGHT_JITTER_ENV, raising=False)
    decoder = _decoder()
    before = _weights(decoder)
    assert jitter_weights(decoder) is decoder
    assert all(torch.equal(a, b) for a, b in zip(before, _weights(decoder)))


def test_jitter_multiplies_every_weight_by_one_plus_small_noise_with_a_fixed_seed(monkeypatch):
    decoder = _decoder()
    before = _weights(decoder)
    monkeypatch.setenv(WEIGHT_JITTER_ENV, "1e-3")
    after = _weights(jitter_weights(copy.deepcopy(decoder)))
    ratios = torch.cat([(a / b - 1).flatten() for a, b in zip(after, before)])
    assert 0.5e-3 < ratios.std().item() < 2e-3 and ratios.abs().max().item() < 1e-2
    assert all(not torch.equal(a, b) for a, b in zip(after, before))  # every parameter tensor moves
    again = _weights(jitter_weights(copy.deepcopy(decoder), 1e-3))  # the argument, the same seed
    assert all(torch.equal(a, b) for a, b in zip(after, again))


def test_an_autoencoder_gets_the_same_decoder_jitter_as_a_bare_decoder():
    decoder = _decoder()
    ae = jitter_weights(Autoencoder(decoder=decoder), 1e-3)
    bare = jitter_weights(copy.deepcopy(decoder), 1e-3)
    assert all(torch.equal(a, b) for a, b in zip(_weights(ae.decoder), _weights(bare)))


@pytest.mark.parametrize("text", ["abc", "-1e-6", "inf", "nan"])
def test_a_bad_jitter_setting_is_refused_naming_the_variable(monkeypatch, text):
    monkeypatch.setenv(WEIGHT_JITTER_ENV, text)
    with pytest.raises(ValueError, match=rf"\${WEIGHT_JITTER_ENV} must be a finite number >= 0, got"):
        jitter_weights(_decoder())


def test_the_cache_keeps_unjittered_weights_and_the_jitter_is_applied_on_load(monkeypatch, tmp_path):
    settings = dict(
        latent_dim=2,
        n_images=32,
        batch_size=32,
        n_val=8,
        cache_dir=tmp_path,
        encoding=EncodeSettings(tau=20.0, z0="zeros"),
    )
    monkeypatch.setenv(WEIGHT_JITTER_ENV, "1e-3")
    trained, _ = train_demo_model(**settings)
    (saved,) = tmp_path.glob("*.pt")
    cached = torch.load(saved, map_location="cpu", weights_only=False)["model"]
    unjittered = initial_model("gfe", 2)
    unjittered.load_state_dict(cached)
    expected = jitter_weights(copy.deepcopy(unjittered), 1e-3)
    assert all(torch.equal(a, b) for a, b in zip(_weights(trained), _weights(expected)))
    loaded, _ = train_demo_model(**settings)
    assert all(torch.equal(a, b) for a, b in zip(_weights(loaded), _weights(expected)))
    monkeypatch.delenv(WEIGHT_JITTER_ENV)
    plain, _ = train_demo_model(**settings)
    assert all(torch.equal(a, b) for a, b in zip(_weights(plain), _weights(unjittered)))
