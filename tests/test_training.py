"""Training components: the time-budget schedule (with a fake clock, so exact), run-length rules, TensorBoard dirs."""

from __future__ import annotations

import pytest
import torch

from nlp_ssl.config import from_dict
from nlp_ssl.errors import ConfigError
from nlp_ssl.optimization import TrainConfig, schedule_factor
from nlp_ssl.training import make_trainer_class, trainer_callbacks

BUDGET_S, STEP_S, WARMUP, PEAK = 10.0, 1.0, 0.2, 0.1


class FakeClock:
    """Seconds that move only when the test's callback says so: every optimizer step takes exactly STEP_S."""

    def __init__(self):
        self.t = 100.0  # an arbitrary origin, as time.monotonic has

    def __call__(self) -> float:
        return self.t


class Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Linear(4, 1)

    def forward(self, x, y):
        return {"loss": torch.nn.functional.mse_loss(self.w(x).squeeze(-1), y)}


def _data(n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return [{"x": x[i], "y": x[i].sum()} for i in range(n)]


def _run(out, clock, save_steps=0, resume=None, max_steps=10**9, eval_steps=0, eval_s=0.0):
    """Train under a BUDGET_S budget with `clock` (each step takes STEP_S, each evaluation every `eval_steps`
    steps `eval_s`); returns (rate used by each optimizer step, steps run)."""
    from transformers import TrainerCallback, TrainingArguments

    TimeBudget, _, _ = trainer_callbacks()
    rates = []

    class Tick(TrainerCallback):
        def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kw):
            rates.append(optimizer.param_groups[0]["lr"])  # the rate this optimizer step uses
            clock.t += STEP_S  # the step's forward and backward passes took STEP_S

        def on_evaluate(self, args, state, control, **kw):
            clock.t += eval_s

    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=4, learning_rate=PEAK, max_steps=max_steps,
                             save_strategy="steps" if save_steps else "no", save_steps=save_steps or None,
                             eval_strategy="steps" if eval_steps else "no", eval_steps=eval_steps or None,
                             logging_steps=1000, report_to=[], use_cpu=True, disable_tqdm=True, seed=0)
    Trainer = make_trainer_class()
    torch.manual_seed(0)
    trainer = Trainer(model=Linear(), args=args, train_dataset=_data(), eval_dataset=_data(8) if eval_steps else None,
                      callbacks=[Tick()],
                      time_budget=TimeBudget(BUDGET_S, clock=clock), warmup_ratio=WARMUP, schedule="linear")
    trainer.train(resume_from_checkpoint=resume)
    return rates, trainer.state.global_step


def test_time_budget_rate_of_each_step_is_the_schedule_at_its_start(tmp_path):
    rates, steps = _run(tmp_path / "run", FakeClock())
    # step k starts (k-1) seconds into the 10 s budget: warm-up over the first 2 s, then linear decay; the run
    # stops after step 10, when the budget is spent. (Before: every rate one step late, steps 1 and 2 at 0.)
    want = [PEAK * schedule_factor((k - 1) * STEP_S / BUDGET_S, WARMUP, "linear") for k in range(1, 11)]
    assert steps == 10
    assert rates == pytest.approx(want, abs=1e-12)
    assert want[:4] == pytest.approx([0.0, 0.05, 0.1, 0.0875])


def test_time_budget_rate_after_an_evaluation_is_the_schedule_at_the_step_s_start(tmp_path):
    # steps of 1 s, an evaluation of 1.5 s after steps 3 and 6: the steps start at these seconds of the budget
    rates, steps = _run(tmp_path / "run", FakeClock(), eval_steps=3, eval_s=1.5)
    starts = [0, 1, 2, 4.5, 5.5, 6.5, 9]  # step 7 ends at 10 s: the budget is spent
    assert steps == 7
    # (Before: the rate was computed when the scheduler stepped, before the evaluation: steps 4 and 7 ran at the
    # rates of 3 s and 7.5 s.)
    assert rates == pytest.approx([PEAK * schedule_factor(t / BUDGET_S, WARMUP, "linear") for t in starts], abs=1e-12)


def test_resumed_time_budget_continues_the_uninterrupted_schedule(tmp_path):
    straight, _ = _run(tmp_path / "straight", FakeClock(), save_steps=4)
    # a new process: its clock starts anywhere; the time already trained comes from checkpoint-4
    ckpt = tmp_path / "straight" / "checkpoint-4"
    assert (ckpt / "time_budget.json").exists()
    clock = FakeClock()
    clock.t = 5000.0
    resumed, steps = _run(tmp_path / "straight", clock, resume=str(ckpt))
    assert steps == 10
    # (Before: the second resumed step restarted the schedule at 0, rate 0 under warm-up.)
    assert resumed == pytest.approx(straight[4:], abs=1e-12)


def test_run_length_is_given_in_one_unit():
    with pytest.raises(ConfigError) as e:
        from_dict(TrainConfig, {"max_time_minutes": 5, "max_steps": 100})
    assert e.value.problems == ["max_time_minutes and max_steps: set together, but a run's length is given in one "
                                "unit (time, steps, tokens or passes); keep one and set the other(s) to not set "
                                "(max_steps: -1 to keep max_time_minutes)"]
    with pytest.raises(ConfigError, match=r"max_time_minutes and num_train_epochs: .*\(num_train_epochs: null to keep max_time_minutes\)"):
        from_dict(TrainConfig, {"max_time_minutes": 5, "num_train_epochs": 3})
    with pytest.raises(ConfigError, match=r"max_steps and num_train_epochs: .*\(num_train_epochs: null to keep max_steps\)"):
        from_dict(TrainConfig, {"max_steps": 100, "num_train_epochs": 3})
    assert from_dict(TrainConfig, {"max_time_minutes": 5}).trainer_length() == (10**9, 1.0)
    assert from_dict(TrainConfig, {"max_steps": 100}).trainer_length() == (100, 1.0)
    assert from_dict(TrainConfig, {"num_train_epochs": 3}).trainer_length() == (-1, 3.0)
    assert from_dict(TrainConfig, {}).trainer_length() == (-1, 1.0)


def test_token_budget_is_a_number_of_steps_independent_of_machine_speed():
    # 1,000,000 tokens at 32 blocks x 128 tokens a step: 244.14 -> 245 steps (at least the budget is seen)
    c = from_dict(TrainConfig, {"max_tokens": 1_000_000, "per_device_train_batch_size": 32})
    assert c.trainer_length(32 * 128) == (245, 1.0)
    assert c.trainer_length(2 * 32 * 128) == (123, 1.0)  # two devices: half the steps, the same tokens
    assert c.run_length() == {"unit": "max_tokens", "value": 1_000_000, "machine_speed_dependent": False}
    assert from_dict(TrainConfig, {"max_time_minutes": 4}).run_length()["machine_speed_dependent"] is True
    assert from_dict(TrainConfig, {"max_steps": 600}).run_length() == {"unit": "max_steps", "value": 600,
                                                                       "machine_speed_dependent": False}
    with pytest.raises(ValueError, match="tokens per optimizer step"):
        c.trainer_length()
    with pytest.raises(ConfigError, match=r"max_steps and max_tokens: .*\(max_tokens: null to keep max_steps\)"):
        from_dict(TrainConfig, {"max_steps": 100, "max_tokens": 10_000})
    with pytest.raises(ConfigError, match=r"max_time_minutes and max_tokens: set together"):
        from_dict(TrainConfig, {"max_time_minutes": 5, "max_tokens": 10_000})
    with pytest.raises(ConfigError, match="max_tokens: must be positive"):
        from_dict(TrainConfig, {"max_tokens": 0})
