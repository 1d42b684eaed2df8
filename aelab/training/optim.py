"""Adam for the trainer, without torch.optim's start-up cost.

The first ``torch.optim`` optimizer a process creates imports ``torch._dynamo`` (its
``add_param_group`` is wrapped in ``torch._disable_dynamo``), a large part of a short
training call's start-up (docs/performance.md). ``FusedAdam`` calls the same fused kernel that
``torch.optim.Adam(fused=True)`` uses (``torch._fused_adam_``, CPU and CUDA) on the same
state, so its updates are identical to torch's (tests/test_optim.py) and its ``state_dict``
has torch's layout, so checkpoints of either load into the other. Other devices (Apple
MPS) get ``torch.optim.Adam`` itself.
"""
from __future__ import annotations

import torch

BETAS = (0.9, 0.999)  # Kingma & Ba 2015, sec. 2: the defaults of torch and the paper
EPS = 1e-8


class FusedAdam:
    """Adam (Kingma & Ba 2015, algorithm 1) over ``params``; the optimizer interface the
    trainer uses: ``zero_grad``, ``step``, ``state_dict``, ``load_state_dict``."""

    def __init__(self, params, lr: float, betas: tuple[float, float] = BETAS, eps: float = EPS):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.betas, self.eps = float(lr), tuple(betas), float(eps)
        self.state: dict[int, dict[str, torch.Tensor]] = {}  # index -> step, exp_avg, exp_avg_sq

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def _slots(self, index: int, p: torch.Tensor) -> dict[str, torch.Tensor]:
        if index not in self.state:  # as torch: created at the first step, step on the device
            self.state[index] = {"step": torch.zeros((), dtype=torch.float32, device=p.device),
                                 "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                                 "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
        return self.state[index]

    @torch.no_grad()
    def step(self) -> None:
        """One Adam update of every parameter that has a gradient."""
        live = [(i, p) for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        slots = [self._slots(i, p) for i, p in live]
        steps = [s["step"] for s in slots]
        torch._foreach_add_(steps, 1)
        torch._fused_adam_([p for _, p in live], [p.grad for _, p in live],
                           [s["exp_avg"] for s in slots], [s["exp_avg_sq"] for s in slots], [],
                           steps, amsgrad=False, lr=self.lr, beta1=self.betas[0],
                           beta2=self.betas[1], weight_decay=0.0, eps=self.eps, maximize=False,
                           grad_scale=None, found_inf=None)

    def state_dict(self) -> dict:
        """torch.optim.Adam's layout: per-parameter slots and one parameter group."""
        group = {"lr": self.lr, "betas": self.betas, "eps": self.eps, "weight_decay": 0.0,
                 "amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
                 "differentiable": False, "fused": True, "decoupled_weight_decay": False,
                 "params": list(range(len(self.params)))}
        return {"state": {i: dict(s) for i, s in self.state.items()}, "param_groups": [group]}

    def load_state_dict(self, state: dict) -> None:
        """Restore from ``state_dict`` (ours or torch.optim.Adam's, one parameter group)."""
        group = state["param_groups"][0]
        self.lr, self.betas, self.eps = float(group["lr"]), tuple(group["betas"]), float(group["eps"])
        self.state = {}
        for index, slots in state["state"].items():
            p = self.params[int(index)]
            # copies in the parameter's memory format: the fused kernel walks parameter,
            # gradient and both moments as one flat array each, so a contiguous moment of a
            # channels_last parameter would be updated in the wrong order (tests/test_optim.py)
            self.state[int(index)] = {
                "step": torch.tensor(float(slots["step"]), dtype=torch.float32, device=p.device),
                "exp_avg": torch.empty_like(p).copy_(slots["exp_avg"]),
                "exp_avg_sq": torch.empty_like(p).copy_(slots["exp_avg_sq"])}


def adam(params, lr: float, device: torch.device):
    """The trainer's optimizer: ``FusedAdam`` on CPU and CUDA, else ``torch.optim.Adam``."""
    if device.type in ("cpu", "cuda"):
        return FusedAdam(params, lr)
    return torch.optim.Adam(params, lr=lr)
