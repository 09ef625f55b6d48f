"""The notebooks' exercises: every reference solution passes its check, plausible wrong answers fail
with the sentence meant for them, stubs report "not done yet", and every stub in a notebook belongs
to a registered exercise (and every registered exercise appears in its notebook)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gfe_viz.exercises import EXERCISES, CodeExercise, PredictExercise, Verdict, ask, check, reveal, solution
from gfe_viz.losses import bce_logits

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CODE = sorted(name for name, e in EXERCISES.items() if isinstance(e, CodeExercise))
PREDICT = sorted(name for name, e in EXERCISES.items() if isinstance(e, PredictExercise))
MARKER = re.compile(r"^# EXERCISE: (\S+)\s*$", re.MULTILINE)


def stub_function(exercise: CodeExercise):
    """The stub as a notebook would define it: executed with the names the notebooks import."""
    namespace = {"torch": torch, "np": np, "bce_logits": bce_logits}
    exec(exercise.stub, namespace)
    return namespace[exercise.function_name]


# --- wrong answers: each a plausible mistake, and a phrase of the sentence it must get ----------------
def euler_uphill(decoder, x, z, dt, alpha):
    z = z.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(bce_logits(decoder(z), x).sum(), z)
    return (z + dt * alpha * grad).detach()


def euler_batch_mean(decoder, x, z, dt, alpha):
    z = z.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(bce_logits(decoder(z), x).mean(), z)
    return (z - dt * alpha * grad).detach()


def euler_without_alpha(decoder, x, z, dt, alpha):
    z = z.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(bce_logits(decoder(z), x).sum(), z)
    return (z - dt * grad).detach()


def accepts_gradient_at_z0(loss0, loss1, grad0, grad1, dt, options):
    return loss0 - loss1 >= options.sigma * dt * options.dt_max * (grad0**2).sum(1)


def accepts_loss_rise(loss0, loss1, grad0, grad1, dt, options):
    return loss1 - loss0 >= -options.sigma * dt * options.dt_max * (grad1**2).sum(1)


def accepts_without_dt_max(loss0, loss1, grad0, grad1, dt, options):
    return loss0 - loss1 >= options.sigma * dt * (grad1**2).sum(1)


def accepts_strictly(loss0, loss1, grad0, grad1, dt, options):
    return loss0 - loss1 > options.sigma * dt * options.dt_max * (grad1**2).sum(1)


def next_dt_shrink_after_acceptance(dt, accepted, options):
    shrunk = dt * options.shrink
    grown = (dt * options.grow).clamp(options.dt0, options.dt_max)
    return torch.where(accepted, shrunk, grown), ~accepted & (shrunk < options.dt_floor)


def next_dt_without_dt0_floor(dt, accepted, options):
    shrunk = dt * options.shrink
    return torch.where(accepted, (dt * options.grow).clamp(max=options.dt_max), shrunk), ~accepted & (
        shrunk < options.dt_floor
    )


def next_dt_forced_one_late(dt, accepted, options):
    new = torch.where(accepted, (dt * options.grow).clamp(options.dt0, options.dt_max), dt * options.shrink)
    return new, ~accepted & (dt < options.dt_floor)


def next_dt_forced_after_acceptance(dt, accepted, options):
    shrunk = dt * options.shrink
    return torch.where(
        accepted, (dt * options.grow).clamp(options.dt0, options.dt_max), shrunk
    ), shrunk < options.dt_floor


def converged_window_of_6(losses, conv_tol):
    return len(losses) >= 5 and abs(np.gradient(losses[-6:]).mean()) < conv_tol


def converged_without_count(losses, conv_tol):
    return bool(abs(np.gradient(losses[-5:]).mean()) < conv_tol)


def converged_with_diff(losses, conv_tol):
    return len(losses) >= 5 and bool(abs(np.diff(losses[-5:]).mean()) < conv_tol)


def converged_without_abs(losses, conv_tol):
    return len(losses) >= 5 and bool(np.gradient(losses[-5:]).mean() < conv_tol)


def second_order_euler_damping(t, dt, z, v, grad, alpha):
    v = v * (1 - 3 * dt / t).unsqueeze(1) - (alpha * dt).unsqueeze(1) * grad
    return z + dt.unsqueeze(1) * v, v


def second_order_old_velocity(t, dt, z, v, grad, alpha):
    decay = ((t + 1e-5) / (t + dt + 1e-5)) ** 3
    return z + dt.unsqueeze(1) * v, v * decay.unsqueeze(1) - (alpha * dt).unsqueeze(1) * grad


def second_order_linear_decay(t, dt, z, v, grad, alpha):
    v = v * ((t + 1e-5) / (t + dt + 1e-5)).unsqueeze(1) - (alpha * dt).unsqueeze(1) * grad
    return z + dt.unsqueeze(1) * v, v


def adjoint_not_detached(decoder, x, z_star):
    loss = bce_logits(decoder(z_star), x).mean()
    return list(torch.autograd.grad(loss, list(decoder.parameters())))


def adjoint_summed(decoder, x, z_star):
    loss = bce_logits(decoder(z_star.detach()), x).sum()
    return list(torch.autograd.grad(loss, list(decoder.parameters())))


def truncation_hidden(x, weight, bias):
    return torch.relu(x @ weight.T + bias)


def truncation_keeps_bias(x, weight, bias):
    return torch.linalg.solve(weight, torch.relu(x @ weight.T + bias).T).T


def threshold_counts_equal(points, beta, target, step):
    n = int((points <= beta).sum())
    return beta - step * n / len(points) * (beta - target)


def threshold_without_n_over_n(points, beta, target, step):
    n = int((points < beta).sum())
    return beta - step * n * (beta - target)


def threshold_counts_untruncated(points, beta, target, step):
    n = int((points > beta).sum())
    return beta - step * n / len(points) * (beta - target)


WRONG = {
    "euler_step": [
        (euler_uphill, "goes uphill"),
        (euler_batch_mean, "is 1/4 of the flow's"),
        (euler_without_alpha, "leaves out alpha"),
    ],
    "accepts": [
        (accepts_gradient_at_z0, "uses the gradient at the candidate z1, not at z0"),
        (accepts_loss_rise, "your step is accepted for sample 0 although its loss rose"),
        (accepts_without_dt_max, "less than sigma * dt * dt_max"),
        (accepts_strictly, "the test is >="),
    ],
    "next_dt": [
        (next_dt_shrink_after_acceptance, "after an acceptance dt grows to grow * dt"),
        (next_dt_without_dt0_floor, "after an acceptance dt is at least dt0"),
        (next_dt_forced_one_late, "forced once a rejection shrinks dt below the floor"),
        (next_dt_forced_after_acceptance, "an accepted step never forces the next one"),
    ],
    "converged": [
        (converged_window_of_6, "only at the last 5"),
        (converged_without_count, "fewer than 5"),
        (converged_with_diff, "not the mean of numpy.diff"),
        (converged_without_abs, "absolute value"),
    ],
    "second_order_step": [
        (second_order_euler_damping, "integrate the damping exactly"),
        (second_order_old_velocity, "your position did not move"),
        (second_order_linear_decay, "the damping keeps the factor"),
    ],
    "approximate_adjoint": [
        (adjoint_not_detached, "includes the path through z*: detach z*"),
        (adjoint_summed, "4 times too large"),
    ],
    "truncation_map": [(truncation_hidden, "lies in the cone"), (truncation_keeps_bias, "lies in the cone")],
    "threshold_step": [
        (threshold_counts_equal, "a point exactly at beta is not truncated"),
        (threshold_without_n_over_n, "beta - step * (n / N) * (beta - target)"),
        (threshold_counts_untruncated, "with 3 of 8 points below beta"),
    ],
}


def test_every_code_exercise_has_wrong_answers():
    assert sorted(WRONG) == CODE
    assert all(len(answers) >= 2 for answers in WRONG.values())


@pytest.mark.parametrize("name", CODE)
def test_reference_solution_passes_quickly_and_leaves_the_random_state(name):
    state = torch.get_rng_state()
    start = time.process_time()
    verdict = check(name, solution(name))
    assert time.process_time() - start < 1.0
    assert verdict.passed and verdict.done, verdict
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("name", CODE)
def test_stub_is_not_done_yet(name):
    verdict = check(name, stub_function(EXERCISES[name]))
    assert not verdict.passed and not verdict.done
    assert str(verdict).startswith("not done yet:")


@pytest.mark.parametrize(
    "name, wrong, phrase",
    [(n, w, p) for n, answers in WRONG.items() for w, p in answers],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_wrong_answer_fails_with_its_message(name, wrong, phrase):
    verdict = check(name, wrong)
    assert not verdict.passed and verdict.done
    assert phrase in verdict.message, verdict.message
    assert verdict.message.count(". ") == 0, f"one sentence expected: {verdict.message}"


def test_an_error_in_the_student_code_is_a_verdict():
    def broken(t, dt, z, v, grad, alpha):
        return z.reshape(3, -1), v  # 2 samples x 2 values do not make 3 rows

    verdict = check("second_order_step", broken)
    assert not verdict.passed and "raised RuntimeError" in verdict.message


def test_wrong_form_of_output_is_named():
    verdict = check("next_dt", lambda dt, accepted, options: dt)
    assert "expected 2 values" in verdict.message
    verdict = check("accepts", lambda loss0, loss1, grad0, grad1, dt, options: (loss0 > loss1).float())
    assert "expected booleans" in verdict.message


@pytest.mark.parametrize("name", PREDICT)
def test_predict_exercise(name):
    exercise = EXERCISES[name]
    assert check(name, exercise.answer).passed
    assert not check(name, ...).done
    if exercise.choices:
        for wrong in set(exercise.choices) - {exercise.answer}:
            verdict = check(name, wrong.upper())
            assert not verdict.passed and verdict.message == f"{exercise.feedback[wrong]} Try another answer."
        with pytest.raises(ValueError, match=re.escape(f"must be one of {list(exercise.choices)}, got 'z'")):
            check(name, "z")
    else:
        assert "too low" in check(name, exercise.answer - 2 * exercise.tolerance).message
        assert "too high" in check(name, exercise.answer + 2 * exercise.tolerance).message
        with pytest.raises(ValueError, match="must be a finite number, got 'x'"):
            check(name, "x")


def test_ask_widget_checks_the_choice():
    box = ask("batch_acceptance")
    _, choices, button, verdict = box.children
    button.click()
    assert "not done yet" in verdict.value
    choices.value = "c"
    button.click()
    assert "passed" in verdict.value
    box = ask("velocity_kept")
    box.children[1].value = 0.2
    box.children[2].click()
    assert "too low" in box.children[3].value


def test_reveal_shows_the_solution_collapsed():
    accordion = reveal("next_dt")
    assert accordion.selected_index is None
    assert "def next_dt(dt, accepted, options):" in accordion.children[0].value
    assert "dt_floor" in accordion.children[0].value
    assert "too high" not in reveal("velocity_kept").children[0].value


def test_bad_names_and_answers_are_refused():
    with pytest.raises(ValueError, match="name must be a registered exercise.*got 'nope'"):
        check("nope", None)
    with pytest.raises(TypeError, match="must be your function accepts, got str"):
        check("accepts", "accepts")
    with pytest.raises(ValueError, match="must name a code exercise"):
        solution("start_point")
    with pytest.raises(ValueError, match="must name a predict exercise"):
        ask("accepts")


def test_verdict_text_and_html():
    assert str(Verdict(False, "x", done=False)) == "not done yet: x"
    assert "<b" in Verdict(True, "a < b")._repr_html_() and "a &lt; b" in Verdict(True, "a < b")._repr_html_()


# --- the notebooks -----------------------------------------------------------------------------------
def notebook_cells():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        for index, cell in enumerate(json.loads(path.read_text())["cells"]):
            yield path.stem, index, cell["cell_type"], "".join(cell["source"])


def test_every_stub_in_the_notebooks_is_registered_checked_and_revealed():
    cells = list(notebook_cells())
    found = {}
    for notebook, index, kind, source in cells:
        for name in MARKER.findall(source):
            assert kind == "code", f"{notebook} cell {index}: an exercise marker in a {kind} cell"
            assert name in EXERCISES, f"{notebook} cell {index}: exercise {name!r} is not registered"
            assert name not in found, f"exercise {name!r} appears twice: {found[name]} and {(notebook, index)}"
            exercise = EXERCISES[name]
            assert exercise.notebook == notebook, f"{name!r} is registered for {exercise.notebook}, found in {notebook}"
            found[name] = (notebook, index)
            later = [s for nb, i, k, s in cells if nb == notebook and i > index and k == "code"]
            if isinstance(exercise, CodeExercise):
                assert source.rstrip() == f"# EXERCISE: {name}\n{exercise.stub}".rstrip(), (
                    f"{notebook} cell {index}: the stub differs from the registered exercise's"
                )
                call = f'check("{name}", {exercise.function_name})'
            else:
                assert f'ask("{name}")' in source, f"{notebook} cell {index}: no ask({name!r})"
                call = f'check("{name}", my_prediction)'
            assert any(call in s for s in later), f"{notebook}: no cell runs {call} after the stub"
            checks = next(s for s in later if call in s)
            assert checks.startswith("# NBVAL_CHECK_OUTPUT"), f"{notebook}: {call} must be a checked cell"
            assert any(f'reveal("{name}")' in s for s in later), f"{notebook}: no reveal({name!r})"
    missing = sorted(set(EXERCISES) - set(found))
    assert not missing, f"registered exercises that appear in no notebook: {missing}"
