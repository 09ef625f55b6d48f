"""Why MNIST GFE got worse after its best loss (seed 0 after 331,456 images): encode 200 fixed training images
(every 295th) with a saved trainer state's decoder, by the fast training encoder and the paper's,
and print each encoder's mean loss, NFE and latent norm, with the decoder's weight norms; then the
mean per-step training loss over each 1,000 steps (16,000 images) since the state's last checkpoint.

    GFE_DATA_DIR=../shared/data python results/paper-scale/latent_drift.py STATE.pt [STATE.pt ...]

(STATE.pt: a unit's `checkpoints/mnist-gfe-seedN.pt`, e.g. from `runs-in-progress/` at a commit.)
About 20 s per state on one core.
"""

import sys

import torch

from gfe_viz.data import load_images
from gfe_viz.experiments.data_efficiency import DataEfficiencySettings
from gfe_viz.models import initial_model
from gfe_viz.training import Trainer

torch.set_num_threads(1)
images = load_images("mnist")
settings = DataEfficiencySettings(
    datasets=("mnist",), methods=("gfe",), encoder="fast", images=1_000_000, batch_size=16, seeds=(0,),
    val_images=1000, checkpoints=21,
)  # fmt: skip
x = images.train[torch.arange(0, 59_000, 295)]
for path in sys.argv[1:]:
    state = torch.load(path, weights_only=False)["trainer"]
    trainer = Trainer(initial_model("gfe", 20, (1, 28, 28), 0), x, None, settings.train_config("gfe", 0), "cpu")
    trainer.load_state_dict(state)
    weights = " ".join(f"{p.norm():.1f}" for p in trainer.model.parameters())
    parts = [f"{state['images_seen']:>9,} images", f"weight norms {weights}"]
    for name, encoding in [("fast", trainer.config.encoding), ("paper", trainer.config.eval_encoding)]:
        with torch.no_grad():
            r = trainer.encode(x, seed=123, settings=encoding)
        nfe, z_norm = r.stats.nfe.double().mean(), r.z.norm(dim=-1).mean()
        parts.append(f"{name}: loss {r.loss.mean():.4f} NFE {nfe:.0f} |z| {z_norm:.1f}")
    print(" | ".join(parts), flush=True)
    losses = torch.tensor([loss for loss, _ in state["since_checkpoint"]])
    means = " ".join(f"{chunk.mean():.4f}" for chunk in losses.split(1000)) if len(losses) else "none yet"
    print(f"  training loss per 1,000 steps from {state['history']['images_seen'][-1]:,} images: {means}", flush=True)
