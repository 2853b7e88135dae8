"""The weight-increasing module: schedule, bounds, checkpoint round trip, DDP averaging."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from admd_deploy.kd import KDWeight


def feed(module: KDWeight, losses, epochs) -> list[float]:
    return [module(torch.tensor(loss), epoch).item() for loss, epoch in zip(losses, epochs)]


def test_weight_is_one_during_warmup_however_the_loss_moves():
    weights = feed(KDWeight(warmup_epochs=2.0), [8.0, 4.0, 1.0, 0.1, 20.0], [0.0, 0.5, 1.0, 1.5, 1.99])
    assert weights == [1.0] * 5


def test_adaptive_weight_is_hand_computed_on_a_short_sequence():
    module = KDWeight(beta=0.5, warmup_epochs=1.0, w_max=10.0)
    # (loss, epoch) -> ema, ref, weight
    expected = [
        (4.0, 0.5, 4.0, 0.0, 1.0),  # first step: ema = loss; warm-up: ref unset
        (2.0, 1.0, 3.0, 3.0, 1.0),  # ref frozen at ema 3; ratio 1
        (1.0, 1.5, 2.0, 3.0, 1.5),  # ratio 3 / 2
        (0.0, 2.0, 1.0, 3.0, 3.0),  # ratio 3 / 1
        (5.0, 2.5, 3.0, 3.0, 3.0),  # ratio 1: the weight keeps its maximum
    ]
    for step, (loss, epoch, ema, ref, weight) in enumerate(expected, start=1):
        out = module(torch.tensor(loss), epoch)
        assert (module.ema.item(), module.ref.item(), out.item(), module.steps.item()) == pytest.approx(
            (ema, ref, weight, step)
        )


def test_adaptive_weight_never_decreases_and_stays_within_w_max():
    losses = [1.0] * 5 + [0.5, 0.2, 0.05, 0.01, 0.001, 0.0001] + [1.0, 5.0, 50.0] + [1e-6] * 5
    epochs = [0.25 * i for i in range(len(losses))]
    weights = feed(KDWeight(beta=0.5, warmup_epochs=1.0, w_max=4.0), losses, epochs)
    assert all(b >= a for a, b in zip(weights, weights[1:]))
    assert weights[4] == 1.0 and weights[8] > 1.0
    assert max(weights) == 4.0


def test_constant_weight_stays_one_while_the_ema_tracks_the_loss():
    module = KDWeight(mode="constant", beta=0.5)
    assert feed(module, [4.0, 0.01, 0.01], [0.0, 5.0, 10.0]) == [1.0, 1.0, 1.0]
    assert module.ema.item() == pytest.approx(1.0075)


def test_linear_weight_ramps_to_w_max_over_the_run_and_never_decreases():
    module = KDWeight(mode="linear", w_max=5.0, total_epochs=10.0)
    assert feed(module, [1.0] * 5, [0.0, 5.0, 10.0, 20.0, 2.0]) == [1.0, 3.0, 5.0, 5.0, 5.0]


def test_eval_mode_does_not_update_the_state():
    module = KDWeight(beta=0.5, warmup_epochs=0.0)
    feed(module, [4.0, 1.0], [0.0, 0.5])
    before = {k: v.clone() for k, v in module.state_dict().items()}
    module.eval()
    out = module(torch.tensor(0.001), 3.0)
    assert out.item() == before["weight"].item()
    assert all(torch.equal(v, before[k]) for k, v in module.state_dict().items())


def test_a_non_finite_loss_is_skipped():
    module = KDWeight(beta=0.5)
    feed(module, [4.0, float("nan"), float("inf"), 2.0], [0.0, 0.1, 0.2, 0.3])
    assert (module.ema.item(), module.steps.item()) == (3.0, 2)


def test_returned_weight_is_a_detached_float32_scalar_copy():
    module = KDWeight()
    out = module(torch.tensor(2.0, requires_grad=True), 0.0)
    assert out.shape == () and out.dtype == torch.float32 and not out.requires_grad
    out.add_(5.0)
    assert module.weight.item() == 1.0


def test_state_is_four_persistent_buffers_with_fixed_dtypes():
    state = KDWeight().state_dict()
    assert {k: v.dtype for k, v in state.items()} == {
        "ema": torch.float32,
        "ref": torch.float32,
        "weight": torch.float32,
        "steps": torch.int64,
    }
    assert state["weight"].item() == 1.0 and state["ref"].item() == 0.0


def test_state_dict_round_trip_continues_identically(tmp_path):
    losses = [3.0, 2.0, 1.5, 1.0, 0.7, 0.5, 0.3, 0.2, 0.1, 0.05]
    epochs = [0.5 * i for i in range(len(losses))]
    kwargs = {"beta": 0.7, "warmup_epochs": 1.0, "w_max": 8.0}
    first = KDWeight(**kwargs)
    feed(first, losses[:4], epochs[:4])
    torch.save(first.state_dict(), tmp_path / "kd.pt")
    resumed = KDWeight(**kwargs)
    resumed.load_state_dict(torch.load(tmp_path / "kd.pt", weights_only=True))
    assert feed(resumed, losses[4:], epochs[4:]) == feed(first, losses[4:], epochs[4:])
    assert all(torch.equal(v, first.state_dict()[k]) for k, v in resumed.state_dict().items())
    assert resumed.weight.item() > 1.0


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"mode": "adaptve"}, "mode must be one of adaptive, constant, linear"),
        ({"beta": 1.0}, r"beta must be in \[0, 1\)"),
        ({"beta": -0.1}, r"beta must be in \[0, 1\)"),
        ({"warmup_epochs": -1.0}, "warmup_epochs must be >= 0"),
        ({"w_max": 0.5}, "w_max must be >= 1"),
        ({"mode": "linear"}, "pass total_epochs > 0"),
        ({"mode": "linear", "total_epochs": 0.0}, "total_epochs must be > 0"),
    ],
)
def test_invalid_settings_say_what_is_valid(kwargs, words):
    with pytest.raises(ValueError, match=words):
        KDWeight(**kwargs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


RANK_LOSSES = [[1.0, 2.0, 3.0], [3.0, 6.0, 1.0]]  # per step means: 2, 4, 2


def ddp_worker(rank: int, port: int, out_dir: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2, timeout=timedelta(seconds=30)
    )
    try:
        module = KDWeight(beta=0.5)
        for step, loss in enumerate(RANK_LOSSES[rank]):
            module(torch.tensor(loss), 0.1 * step)
        torch.save(module.state_dict(), f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(60)
def test_ddp_ranks_feeding_different_losses_share_the_ema_of_their_mean(tmp_path):
    # fork, not spawn: the worker lives in this test module, which spawned children cannot import by name
    mp.start_processes(ddp_worker, args=(free_port(), str(tmp_path)), nprocs=2, join=True, start_method="fork")
    states = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    # means 2, 4, 2 -> ema 2, 0.5*2 + 0.5*4 = 3, 0.5*3 + 0.5*2 = 2.5
    assert [s["ema"].item() for s in states] == [2.5, 2.5]
    assert [s["steps"].item() for s in states] == [3, 3]
