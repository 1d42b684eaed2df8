"""FusedAdam: the same updates as torch.optim.Adam(fused=True), torch's state layout, and no
torch._dynamo import (the start-up cost it exists to avoid)."""
import subprocess
import sys

import pytest
import torch

from aelab.training.optim import FusedAdam, adam


def model_and_batches(seed=0):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    return net, [torch.randn(8, 6) for _ in range(7)]


def train(net, optimizer, batches):
    for x in batches:
        optimizer.zero_grad(set_to_none=True)
        net(x).pow(2).mean().backward()
        optimizer.step()


def test_the_same_updates_as_torch_fused_adam():
    ours, batches = model_and_batches()
    theirs, _ = model_and_batches()
    train(ours, FusedAdam(ours.parameters(), lr=1e-2), batches)
    train(theirs, torch.optim.Adam(theirs.parameters(), lr=1e-2, fused=True), batches)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(a, b)


def test_state_moves_between_torch_and_ours_both_ways():
    a, batches = model_and_batches()
    b, _ = model_and_batches()
    torch_adam = torch.optim.Adam(a.parameters(), lr=1e-2, fused=True)
    train(a, torch_adam, batches[:3])
    train(b, FusedAdam(b.parameters(), lr=1e-2), batches[:3])
    ours = FusedAdam(b.parameters(), lr=0.5)
    ours.load_state_dict(torch_adam.state_dict())  # torch -> ours (lr comes from the state)
    train(a, torch_adam, batches[3:])
    train(b, ours, batches[3:])
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    back = torch.optim.Adam(a.parameters(), lr=1e-2, fused=True)
    back.load_state_dict(ours.state_dict())  # ours -> torch
    assert back.state_dict()["state"][0]["step"].item() == len(batches)


def test_parameters_without_gradients_are_left_alone():
    net, batches = model_and_batches()
    frozen = net[2].weight.detach().clone()
    optimizer = FusedAdam(net.parameters(), lr=1e-2)
    optimizer.zero_grad()
    net[0](batches[0]).sum().backward()  # only the first layer gets gradients
    optimizer.step()
    assert torch.equal(net[2].weight, frozen) and set(optimizer.state) == {0, 1}


@pytest.mark.parametrize("device, kind", [("cpu", FusedAdam), ("meta", torch.optim.Adam)])
def test_the_trainer_gets_fused_adam_on_cpu(device, kind):
    assert isinstance(adam(torch.nn.Linear(2, 2).parameters(), 1e-3, torch.device(device)), kind)


@pytest.mark.slow
def test_no_dynamo_import():
    code = ("import sys, torch; from aelab.training.optim import FusedAdam; net = torch.nn.Linear(3, 2); "
            "o = FusedAdam(net.parameters(), 1e-3); net(torch.ones(1, 3)).sum().backward(); "
            "o.step(); print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
