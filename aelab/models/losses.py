"""Loss terms shared by the variants, each returned per example, shape ``(B,)``
or ``(B, K)``, so callers choose the reduction. Equations cite the survey
(P. Singh, "From Autoencoders to beta-VAE: A Survey", 2018; README, Citations)."""
from __future__ import annotations

import math
from typing import Callable

import torch

LIKELIHOODS = ("bernoulli", "gaussian")


def reconstruction(logits: torch.Tensor, x: torch.Tensor, likelihood: str) -> torch.Tensor:
    """Negative log-likelihood of ``x`` in [0, 1] under the decoder, summed over pixels: (B,).

    bernoulli: binary cross-entropy with the decoder's logits (survey 2, "cross
    entropy when the activation function is sigmoid"; the VAE's -log p(x|z), 4.1.1).
    gaussian: squared error of the mean ``sigmoid(logits)``, i.e. -log N(x; mean, 1/2)
    up to a constant (survey 2's MSE loss, summed rather than averaged over pixels).
    """
    if likelihood == "bernoulli":
        nll = BernoulliNLL.apply(logits, x)
    elif likelihood == "gaussian":
        nll = (torch.sigmoid(logits) - x).pow(2)
    else:
        raise ValueError(f"unknown likelihood {likelihood!r}")
    return nll.flatten(1).sum(1)  # (B,)


class BernoulliNLL(torch.autograd.Function):
    """Elementwise binary cross-entropy with logits, ``F.binary_cross_entropy_with_logits``
    (reduction none) with a faster forward and torch's own backward.

    Value: max(l, 0) - x l - log(sigmoid(|l|)), the same function as torch's
    (1 - x) l - log_sigmoid(l) (log(sigmoid(|l|)) = -log(1 + exp(-|l|))). torch evaluates
    log_sigmoid with ``log1p``, which its CPU kernels do not vectorise; ``sigmoid`` and ``log``
    are vectorised, and this takes three passes over the logits instead of five (exp, add,
    log; the timing is in docs/performance.md). Where sigmoid(|l|) rounds to 1 (|l| > 16.6)
    a pixel's value can be low by at most 6e-8 nats; nothing else differs.
    Gradient: (sigmoid(l) - x) * grad for the logits and -l * grad for the targets, the
    formula of torch's backward, so gradients (and with them training) are bit-identical
    to torch's (tests/test_math.py).
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(logits, x)
        log_sigmoid_abs = logits.abs().sigmoid_().log_()  # -log(1 + exp(-|l|))
        return logits.clamp_min(0).addcmul_(x, logits, value=-1).sub_(log_sigmoid_abs)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        logits, x = ctx.saved_tensors
        grad_logits = torch.sigmoid(logits).sub_(x).mul_(grad) if ctx.needs_input_grad[0] else None
        grad_x = -logits * grad if ctx.needs_input_grad[1] else None
        return grad_logits, grad_x


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, diag(exp(logvar))) || N(0, I) ) per latent dimension: (B, K).

    Closed form of the survey's D_KL(q(z|x) || p(z)) term (4.1.1), as derived in
    Kingma & Welling 2014, appendix B: -1/2 (1 + log s^2 - mu^2 - s^2).
    """
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())


def gaussian_kl_between(mu1: torch.Tensor, logvar1: torch.Tensor, mu2: torch.Tensor,
                        logvar2: torch.Tensor) -> torch.Tensor:
    """KL( N(mu1, exp(logvar1)) || N(mu2, exp(logvar2)) ) per dimension, elementwise:
    1/2 (log s2^2 - log s1^2 + (s1^2 + (mu1 - mu2)^2) / s2^2 - 1); ``gaussian_kl`` is the
    case mu2 = 0, s2 = 1."""
    return 0.5 * (logvar2 - logvar1 + (logvar1.exp() + (mu1 - mu2) ** 2) / logvar2.exp() - 1)


def bernoulli_kl(rho: float, rho_hat: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """KL(rho || rho_hat) between Bernoulli means, elementwise (survey 3.2, L_SAE).

    rho log(rho / rho_hat) + (1 - rho) log((1 - rho) / (1 - rho_hat)).
    """
    rho_hat = rho_hat.clamp(eps, 1 - eps)
    return rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))


def jacobian_frobenius_sq(encode: Callable[[torch.Tensor], torch.Tensor],
                          x: torch.Tensor) -> torch.Tensor:
    """Exact ||J_f(x)||_F^2 = sum_ij (dh_j / dx_i)^2 for each example: (B,) (survey 3.4).

    One batched backward pass per code unit (vectorised with
    ``is_grads_batched``), so it is exact for an encoder of any depth. The graph
    is kept so the penalty itself can be differentiated. Examples must be
    independent in ``encode`` (no batch norm), which holds for ``aelab.models.nn``.
    """
    x = x.detach().requires_grad_(True)
    h = encode(x)  # (B, K)
    batch, k = h.shape
    basis = torch.eye(k, device=h.device, dtype=h.dtype).unsqueeze(1).expand(k, batch, k)
    (grads,) = torch.autograd.grad(h, x, grad_outputs=basis, create_graph=True,
                                   is_grads_batched=True)  # (K, B, C, H, W): row j of each J
    return grads.pow(2).flatten(2).sum(2).sum(0)  # (B,)


def relu_mlp_jacobian_frobenius_sq(layers, x: torch.Tensor) -> torch.Tensor:
    """Exact ||J_f(x)||_F^2 per example, (B,), for f = W_L relu(... relu(W_1 x + b_1) ...) + b_L.

    The Jacobian of such an MLP at x is the product J = W_L D_{L-1} W_{L-1} ... D_1 W_1, with
    D_l = diag(relu'(a_l)) the 0/1 masks of the pre-activations a_l (Rifai et al. 2011 give
    the one-layer case ||J||_F^2 = sum_j s'(a_j)^2 ||W_j||^2). It is built here as a batched
    product from the code side, (B, K, n_l) per layer, so one forward of ordinary ops gives
    it and its gradient is a plain backward: the masks are constant almost everywhere (as
    relu's derivative is to autograd), so the pass that finds them keeps no graph.
    ``layers`` are the ``nn.Linear`` layers in order; ``x`` is (B, D).
    """
    masks = []
    with torch.no_grad():
        h = x
        for layer in layers[:-1]:
            a = layer(h)  # (B, n_l)
            masks.append(a > 0)
            h = torch.relu(a)
    rows = layers[-1].weight  # (K, n_{L-1}): the rows of J seen from the code side
    for layer, mask in zip(reversed(layers[:-1]), reversed(masks)):
        # (B, K, n_l) * D_l, then @ W_l: (B, K, n_{l-1}), one matmul over all B*K rows
        rows = (rows * mask[:, None, :].to(rows.dtype)) @ layer.weight
    if rows.dim() == 2:  # a single linear layer: the same J for every example
        return rows.pow(2).sum().expand(x.shape[0])
    return rows.pow(2).sum((1, 2))  # (B,)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) per dimension, elementwise (broadcasting)."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) * torch.exp(-logvar))


def tc_decomposition(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                     dataset_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The three terms of the averaged KL (Chen et al. 2018, eq. 2), per example: (B,) each.

    E_p(n)[KL(q(z|n) || p(z))] = I_q(z; n) + KL(q(z) || prod_j q(z_j)) + sum_j KL(q(z_j) || p(z_j)),
    i.e. index-code mutual information, total correlation and dimension-wise KL. The
    aggregate posterior is estimated by minibatch-weighted sampling (Chen et al. 2018,
    sec. 3.1): log q(z_i) ~ logsumexp_j log q(z_i | n_j) - log(N M), with M the batch size and
    N ``dataset_size``; the same per dimension for log q(z_ij). ``z`` are samples of
    q(z|n_i) for the batch's own posteriors ``mu``, ``logvar`` (all (B, K)).
    """
    batch = z.shape[0]
    log_norm = math.log(max(dataset_size, batch) * batch)
    pairs = gaussian_log_density(z[:, None], mu[None], logvar[None])  # (B, B, K): q(z_i|n_j)
    log_qz = torch.logsumexp(pairs.sum(2), dim=1) - log_norm  # (B,)
    log_prod_qzj = (torch.logsumexp(pairs, dim=1) - log_norm).sum(1)  # (B,)
    log_qz_x = gaussian_log_density(z, mu, logvar).sum(1)  # (B,)
    log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(1)  # (B,)
    return log_qz_x - log_qz, log_qz - log_prod_qzj, log_prod_qzj - log_pz
