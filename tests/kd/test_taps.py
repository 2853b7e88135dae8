from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from admd_deploy.kd.taps import FeatureTap


class Head(nn.Module):
    def forward(self, xs):
        xs[0] = xs[0] * 0  # a head that overwrites its input list in place
        return sum(x.sum() for x in xs)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.head = nn.Conv2d(1, 2, 1), nn.Conv2d(1, 3, 1), Head()

    def forward(self, x):
        return self.head([self.a(x), self.b(x)])


def test_tap_records_the_head_inputs_and_removes_its_hooks_on_exit():
    net = Net()
    x = torch.ones(1, 1, 2, 2)
    with FeatureTap(net.head, keep_output=True) as tap:
        out = net(x)
    assert [f.shape[1] for f in tap.features] == [2, 3]
    assert torch.allclose(tap.features[0], net.a(x))  # the copy is immune to the in-place overwrite
    assert tap.output is out
    assert not net.head._forward_pre_hooks and not net.head._forward_hooks
    assert not copy.deepcopy(net).head._forward_pre_hooks


def test_tap_removes_its_hooks_when_the_forward_raises():
    net = Net()
    with pytest.raises(RuntimeError), FeatureTap(net.head):
        net(torch.ones(1, 2, 2, 2))  # wrong channel count
    assert not net.head._forward_pre_hooks


def test_require_raises_when_the_tapped_module_never_ran():
    net = Net()
    with FeatureTap(net.head) as tap:
        pass
    with pytest.raises(RuntimeError, match="did not run"):
        tap.require()
