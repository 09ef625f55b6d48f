"""Reading the data-efficiency results: seed-averaged curves and the images each method needs.

A method "needs" the images seen at the first checkpoint where its seed-mean validation loss is at
or below the target; the true crossing lies between that checkpoint and the one before it
(reported as ``above_at``), so the numbers are only as fine as the checkpoint grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Curve:
    """Validation loss of one (dataset, method) at the checkpoints every seed has reached."""

    images_seen: np.ndarray
    wall_time: np.ndarray  #: mean over seeds, seconds of training
    mean: np.ndarray  #: seed-mean validation loss
    low: np.ndarray  #: seed minimum
    high: np.ndarray  #: seed maximum
    seeds: tuple[int, ...]


def seed_curve(rows: list[dict], dataset: str, method: str) -> Curve | None:
    """The seed spread of one method's curve, or None when it has no rows."""
    by_seed: dict[int, dict[int, dict]] = {}
    for r in rows:
        if r["dataset"] == dataset and r["method"] == method:
            by_seed.setdefault(r["seed"], {})[r["images_seen"]] = r
    if not by_seed:
        return None
    common = sorted(set.intersection(*(set(points) for points in by_seed.values())))
    val = np.array([[by_seed[s][n]["val_loss"] for s in by_seed] for n in common], dtype=float).reshape(len(common), -1)
    wall = np.array([[by_seed[s][n]["wall_time"] for s in by_seed] for n in common], dtype=float).reshape(
        len(common), -1
    )
    return Curve(
        images_seen=np.array(common, dtype=int),
        wall_time=wall.mean(1),
        mean=val.mean(1),
        low=val.min(1),
        high=val.max(1),
        seeds=tuple(sorted(by_seed)),
    )


def first_reaching(images_seen, losses, target: float) -> tuple[int | None, int | None]:
    """(images at the first checkpoint with loss <= target, images at the checkpoint before it);
    (None, None) when the target is never reached, (n, 0) when the first checkpoint reaches it."""
    for i, loss in enumerate(losses):
        if loss <= target:
            return int(images_seen[i]), int(images_seen[i - 1]) if i else 0
    return None, None


def summarise(rows: list[dict], target: float | None = None) -> dict:
    """Per dataset: the target loss (default the AE's final seed-mean loss), each method's final loss
    and images needed to reach the target (seed-mean curve, and each seed's curve against the same
    target), the ratio AE images / method images, and the bounds on that ratio that the checkpoint
    brackets allow (None: unbounded)."""
    summary = {}
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        methods = list(dict.fromkeys(r["method"] for r in rows if r["dataset"] == dataset))
        curves = {m: seed_curve(rows, dataset, m) for m in methods}
        goal, source = target, "given"
        if goal is None and "ae" in curves:
            goal, source = float(curves["ae"].mean[-1]), "ae_final"
        entry = {
            "target": goal,
            "target_source": source if goal is not None else None,
            "methods": {},
            "ratio": {},
            "ratio_bounds": {},
        }
        for m, c in curves.items():
            info = {
                "final_images_seen": int(c.images_seen[-1]),
                "final_val_loss": float(c.mean[-1]),
                "final_wall_time": float(c.wall_time[-1]),
                "seeds": list(c.seeds),
            }
            if goal is not None:
                info["images"], info["above_at"] = first_reaching(c.images_seen, c.mean, goal)
                info["per_seed"] = {
                    str(s): first_reaching(*_seed_losses(rows, dataset, m, s), goal)[0] for s in c.seeds
                }
            entry["methods"][m] = info
        ae = entry["methods"].get("ae", {})
        for m, info in entry["methods"].items():
            ratio = _images_ratio((ae.get("images"), ae.get("above_at")), (info.get("images"), info.get("above_at")))
            if m != "ae" and ratio is not None:
                entry["ratio"][m], entry["ratio_bounds"][m] = ratio[0], list(ratio[1:])
        summary[dataset] = entry
    return summary


def images_to_reach(rows: list[dict], dataset: str, targets: list[float]) -> list[dict]:
    """For each target loss, each method's crossing on its seed-mean curve and the ratio to the AE's.

    One dict per target: ``target``, ``methods`` (method -> ``(images, above_at)`` as
    :func:`first_reaching` gives them: the first checkpoint at or below the target and the one
    before it; ``(None, None)`` when the curve never gets there) and ``ratio`` (method -> AE images
    / method images with the bounds the brackets allow, ``(ratio, low, high)``, high None when
    unbounded; only where both reach the target), and ``seeds`` (method -> seed -> the first
    checkpoint of that seed's own curve at or below the target, None when it never gets there; the
    seed spread of the crossing). Targets spread over the range of the curves show where one
    method catches up with the other, which the AE's final loss alone cannot.
    """
    curves = {
        m: seed_curve(rows, dataset, m) for m in dict.fromkeys(r["method"] for r in rows if r["dataset"] == dataset)
    }
    seed_losses = {m: {s: _seed_losses(rows, dataset, m, s) for s in c.seeds} for m, c in curves.items()}
    table = []
    for target in targets:
        reached = {m: first_reaching(c.images_seen, c.mean, target) for m, c in curves.items()}
        ae = reached.get("ae", (None, None))
        ratio = {m: _images_ratio(ae, crossing) for m, crossing in reached.items() if m != "ae"}
        seeds = {
            m: {s: first_reaching(*losses, target)[0] for s, losses in by_seed.items()}
            for m, by_seed in seed_losses.items()
        }
        table.append(
            {
                "target": target,
                "methods": reached,
                "ratio": {m: r for m, r in ratio.items() if r is not None},
                "seeds": seeds,
            }
        )
    return table


def _images_ratio(ae: tuple, method: tuple) -> tuple | None:
    """(AE images / method images, low, high) from two ``(images, above_at)`` crossings: the ratio at
    the checkpoints and the bounds their brackets allow (high None: unbounded); None unless both cross."""
    (ae_images, ae_above), (images, above) = ae, method
    if not ae_images or not images:
        return None
    return ae_images / images, ae_above / images, ae_images / above if above else None


def _seed_losses(rows, dataset, method, seed):
    mine = sorted(
        (r["images_seen"], r["val_loss"])
        for r in rows
        if r["dataset"] == dataset and r["method"] == method and r["seed"] == seed
    )
    return [n for n, _ in mine], [v for _, v in mine]


def format_summary(summary: dict) -> str:
    """One paragraph per dataset, e.g. ``mnist: target 0.1234 (AE final) ... ratio ae/gfe 4.0``."""
    lines = []
    for dataset, entry in summary.items():
        goal = entry["target"]
        head = f"{dataset}: target validation loss " + (
            "none (no AE and no --target)"
            if goal is None
            else f"{goal:.4f} ({'the AE final loss' if entry['target_source'] == 'ae_final' else 'given'})"
        )
        lines.append(head)
        for m, info in entry["methods"].items():
            text = (
                f"  {m}: final val loss {info['final_val_loss']:.4f} after {info['final_images_seen']:,} images "
                f"({_duration(info['final_wall_time'])} of training, seeds {info['seeds']})"
            )
            if goal is not None:
                text += (
                    "; does not reach the target"
                    if info["images"] is None
                    else f"; reaches target at {info['images']:,} images (above at {info['above_at']:,})"
                )
            lines.append(text)
        for m, ratio in entry["ratio"].items():
            low, high = entry["ratio_bounds"][m]
            lines.append(
                f"  images ratio ae/{m}: {ratio:.2f} at the checkpoints; between {low:.2f} and "
                + ("unbounded" if high is None else f"{high:.2f}")
                + " given the checkpoint brackets"
            )
    return "\n".join(lines) + "\n"


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def compare_curves(rows: list[dict], dataset: str, reference: str, candidate: str) -> list[dict]:
    """Checkpoint by checkpoint, ``candidate``'s validation loss against ``reference``'s on the
    seeds and checkpoints both reached (the same seed means the same initial decoder and stream).

    Each row: images seen, each curve's seed mean and sample standard deviation, the seed-mean of
    the paired differences candidate - reference, and ``equal_or_lower``: the candidate's mean is
    at most the reference's plus the larger of the two standard deviations (the seed spread).
    """
    seeds = sorted(set(seed_curve(rows, dataset, reference).seeds) & set(seed_curve(rows, dataset, candidate).seeds))
    if not seeds:
        raise ValueError(f"{reference!r} and {candidate!r} share no seed on {dataset!r}")
    losses = {}
    for method in (reference, candidate):
        for s in seeds:
            for n, v in zip(*_seed_losses(rows, dataset, method, s)):
                losses.setdefault(n, {}).setdefault(method, {})[s] = v
    table = []
    for n in sorted(losses):
        if any(len(losses[n].get(m, {})) < len(seeds) for m in (reference, candidate)):
            continue
        ref, cand = (np.array([losses[n][m][s] for s in seeds]) for m in (reference, candidate))
        ref_std, cand_std = (float(v.std(ddof=1)) if len(seeds) > 1 else 0.0 for v in (ref, cand))
        table.append(
            {
                "images_seen": n,
                "reference_mean": float(ref.mean()),
                "reference_std": ref_std,
                "candidate_mean": float(cand.mean()),
                "candidate_std": cand_std,
                "paired_difference": float((cand - ref).mean()),
                "seeds": seeds,
                "equal_or_lower": bool(cand.mean() <= ref.mean() + max(ref_std, cand_std)),
            }
        )
    return table
