"""Contractive autoencoder (survey 3.4; Rifai et al. 2011): penalise the squared
Frobenius norm of the encoder's Jacobian, computed exactly for any depth: in closed form for
the MLP encoder, by autograd for any other."""
from dataclasses import dataclass

from aelab.models.base import AEConfig, Autoencoder, param
from aelab.models.losses import jacobian_frobenius_sq, relu_mlp_jacobian_frobenius_sq
from aelab.models.registry import register


@dataclass
class Config(AEConfig):
    contractive_weight: float = param(0.1, "weight of ||J_f(x)||_F^2 in the loss", ge=0.0)


@register("contractive")
class ContractiveAE(Autoencoder):
    """Contractive autoencoder: penalises ||J_f(x)||_F^2 of the encoder (survey 3.4)."""
    contractive_jacobian = True

    Config = Config
    about = ("Adds the squared Frobenius norm of the encoder's Jacobian to the loss, so the code "
             "changes little when the input moves slightly off the data manifold; it stays "
             "sensitive only along directions the data actually varies in.")
    loss_latex = r"L_{CAE} = L(\theta,\phi) + \lambda \lVert J_f(x) \rVert_F^2,\quad \lVert J_f(x) \rVert_F^2 = \sum_{ij} \Big(\frac{\partial h_j(x)}{\partial x_i}\Big)^2"

    def penalties(self, x, out):
        # ||J_f(x)||_F^2 = sum_ij (dh_j(x) / dx_i)^2, averaged over the batch
        # the closed form is the code's Jacobian only while the code is the encoder's output
        layers = self.encoder.relu_mlp_layers() if type(self).encode is Autoencoder.encode else None
        per_example = (relu_mlp_jacobian_frobenius_sq(layers, x.flatten(1)) if layers
                       else jacobian_frobenius_sq(self.encode, x))  # (B,)
        jac = per_example.mean()
        return {"contractive": (jac, self.config.contractive_weight * jac)}
