"""Demo-model cache: loaded without running code, a damaged or planted file retrained with a warning."""

from __future__ import annotations

import os
import warnings

import pytest
import torch

from gfe_viz.demo_models import cache_folder, train_demo_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = dict(method="ae", latent_dim=2, n_images=64, batch_size=32, n_val=20)


class _Planted:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_a_damaged_or_planted_cache_file_is_retrained_with_a_warning_and_runs_nothing(tmp_path):
    model, history = train_demo_model(**TINY, cache_dir=tmp_path / "cache")
    (path,) = cache_folder(tmp_path / "cache").iterdir()
    marker = tmp_path / "code-ran"
    for damage in ("planted", "truncated", "random"):
        if damage == "planted":
            torch.save({"model": _Planted(marker), "history": {}}, path)
        else:
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2] if damage == "truncated" else os.urandom(4000))
        with pytest.warns(UserWarning, match=f"{path} is damaged or not a file gfe-viz wrote .*; retraining it"):
            again, again_history = train_demo_model(**TINY, cache_dir=tmp_path / "cache")
        assert not marker.exists(), f"{damage}: loading the cache must never run code from it"
        assert vars(again_history).keys() == vars(history).keys()
        assert again_history.val_loss == history.val_loss, "retrained to the same model"
        for a, b in zip(again.parameters(), model.parameters()):
            assert torch.equal(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded, _ = train_demo_model(**TINY, cache_dir=tmp_path / "cache")  # the retrained file loads cleanly
    assert all(torch.equal(a, b) for a, b in zip(loaded.parameters(), model.parameters()))
