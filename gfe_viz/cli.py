"""The ``gfe-viz`` command line (also ``python -m gfe_viz``).

``gfe-viz lessons``: open the notebooks in JupyterLab (also as root, where JupyterLab alone refuses).

``gfe-viz data-efficiency``: train the AE baseline and GFE on the same image stream and compare
validation loss against images seen and wall time; see :mod:`gfe_viz.experiments.data_efficiency`.
Exit status: 0 done, 1 some unit stopped because its training diverged, 2 bad input or a refused
folder (nothing written), 130 interrupted (Ctrl-C; the same command resumes).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
import types
import typing
from pathlib import Path

PROG = "gfe-viz"
FIRST_LESSON = Path("notebooks") / "00_start_here.ipynb"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return int(text)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def _settings_fields() -> list[tuple[dataclasses.Field, type, bool]]:
    """Each field of :class:`DataEfficiencySettings` with its value type (``None`` stripped from an
    optional one, the element type of a tuple) and whether it is a tuple (one or more values)."""
    from .experiments.data_efficiency import DataEfficiencySettings

    hints = typing.get_type_hints(DataEfficiencySettings)
    described = []
    for f in dataclasses.fields(DataEfficiencySettings):
        hint = hints[f.name]
        if isinstance(hint, types.UnionType):
            (hint,) = (arg for arg in typing.get_args(hint) if arg is not type(None))
        many = typing.get_origin(hint) is tuple
        described.append((f, typing.get_args(hint)[0] if many else hint, many))
    return described


def add_settings_options(parser: argparse.ArgumentParser) -> None:
    """One option per settings field, from the field itself: its name (``batch_size`` gives
    ``--batch-size``, or ``metadata["option"]``), help, default, ``choices`` (a dict offers its keys, sorted)
    and type: one or more values for a tuple; for an int, a whole number > 0 (>= 0 where ``metadata["minimum"]``
    is 0) or one of its choices; for a float, a finite number > 0."""
    for f, kind, many in _settings_fields():
        meta, option = f.metadata, {}
        if "choices" in meta:
            choices = meta["choices"]
            option["choices"] = sorted(choices) if isinstance(choices, dict) else choices
        if kind is int:
            option["type"] = (
                int if "choices" in meta else _non_negative_int if meta.get("minimum") == 0 else _positive_int
            )
        elif kind is float:
            option["type"] = _positive_float
        if many:
            option["nargs"] = "+"
        parser.add_argument(
            meta.get("option", "--" + f.name.replace("_", "-")),
            dest=f.name,
            default=f.default,
            help=meta["help"],
            **option,
        )


def settings_from_args(args: argparse.Namespace):
    """The :class:`DataEfficiencySettings` of options added by :func:`add_settings_options`."""
    from .experiments.data_efficiency import DataEfficiencySettings

    return DataEfficiencySettings(
        **{f.name: tuple(getattr(args, f.name)) if many else getattr(args, f.name) for f, _, many in _settings_fields()}
    )


def build_parser() -> argparse.ArgumentParser:
    from .experiments.executors import EXECUTORS

    parser = argparse.ArgumentParser(
        prog=PROG, description="Gradient Flow Encoding: experiments from the command line."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = commands.add_parser(
        "data-efficiency",
        help="AE versus GFE: validation loss against training images seen",
        description="Train the AE baseline and GFE on the same stream of training images from the same initial "
        "decoder, evaluate on held-out test images at log-spaced checkpoints, and write results.csv, "
        "run.json, summary.txt/json and data_efficiency.png to --out. Re-running the same command "
        "resumes an interrupted run. Time: on one CPU core GFE trains about 15 images/s at batch 5 "
        "and each checkpoint encodes the validation images at about 25 images/s (the AE is far "
        "faster), so --images 3000 with the default sizes takes 10 to 15 minutes per dataset and "
        "seed; the progress bar's 'left' counts the evaluations still to come.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", required=True, help="output folder (new, empty, or a previous run of the same settings)")
    add_settings_options(p)
    p.add_argument(
        "--target",
        type=_positive_float,
        default=None,
        help="validation loss the summary measures; unset: the AE's final loss",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="torch CPU threads; unset: 1 for batches below 128 (fastest, above all on a busy CPU), "
        "else one per core. A run resumes only with the device and threads it was trained with",
    )
    p.add_argument("--data-root", default=None, help="data folder; unset: $GFE_DATA_DIR, else the user cache")
    p.add_argument(
        "--save-every",
        type=_positive_float,
        default=300.0,
        help="seconds between saves of the training state, besides each checkpoint",
    )
    p.add_argument(
        "--jobs",
        type=_positive_int,
        default=1,
        help="units (dataset x method x seed) trained at once, each a process on one torch thread",
    )
    p.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="local: processes on this machine; slurm: a job array through submitit "
        "(pip install 'gfe-viz[cluster]'), --jobs tasks at once",
    )
    p.add_argument(
        "--stop-at",
        type=_positive_int,
        default=None,
        metavar="IMAGES",
        help="train each unit only to its last checkpoint at or below IMAGES (run.json records paused_at); "
        "the same command without it continues to --images",
    )
    p.add_argument(
        "--status",
        action="store_true",
        help="print how far each unit of the run in --out is, and exit without training",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(handler=_data_efficiency, error=p.error)
    p = commands.add_parser(
        "lessons",
        help="open the lessons in JupyterLab",
        description="Start JupyterLab on the first lesson (run from the repository root). As "
        "root it adds --allow-root, which JupyterLab needs there; further arguments "
        "go to JupyterLab.",
    )
    p.add_argument("notebook", nargs="?", default=str(FIRST_LESSON), help="notebook to open (default: %(default)s)")
    p.set_defaults(handler=_lessons, error=p.error)
    return parser


def jupyterlab_argv(notebook: str, extra: list[str], as_root: bool) -> list[str]:
    """The command that opens ``notebook`` in JupyterLab, with ``--allow-root`` when ``as_root``."""
    return [sys.executable, "-m", "jupyterlab", notebook, *(["--allow-root"] if as_root else []), *extra]


def _lessons(args: argparse.Namespace, command: str) -> int:
    if not Path(args.notebook).is_file():
        args.error(
            f"notebook {args.notebook!r} not found: run gfe-viz lessons from the repository root "
            f"(the folder that holds notebooks/), or name the notebook"
        )
    argv = jupyterlab_argv(args.notebook, args.jupyter_args, as_root=hasattr(os, "geteuid") and os.geteuid() == 0)
    os.execv(argv[0], argv)  # JupyterLab replaces this process, so Ctrl-C and exit codes are its own


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (argument errors exit with status 2)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args, unknown = build_parser().parse_known_args(argv)
    if args.command == "lessons":
        args.jupyter_args = unknown
    elif unknown:
        args.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return args.handler(args, command=shlex.join([PROG, *argv]))
    except KeyboardInterrupt:
        print("interrupted; run the same command to resume", file=sys.stderr)
        return 130


def _data_efficiency(args: argparse.Namespace, command: str) -> int:
    """Settings, data and folder errors exit like argument errors (status 2, nothing written);
    a unit stopped because it diverged gives status 1."""
    from .experiments.data_efficiency import format_status, run_data_efficiency, run_status

    if args.status:
        try:
            print(format_status(run_status(args.out)), end="")
        except (ValueError, OSError) as exc:
            args.error(str(exc))
        return 0
    try:
        settings = settings_from_args(args)
        output = run_data_efficiency(
            settings,
            args.out,
            data_root=args.data_root,
            device=args.device,
            command=command,
            target=args.target,
            progress=not args.no_progress,
            save_every=args.save_every,
            threads=args.threads,
            jobs=args.jobs,
            executor=args.executor,
            stop_at=args.stop_at,
        )
    except (ValueError, OSError) as exc:
        args.error(str(exc))
    print((output.folder / "summary.txt").read_text(encoding="utf-8"), end="")
    print(f"results in {output.folder}")
    return 1 if output.stopped else 0
