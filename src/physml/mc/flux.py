"""The global flux move of 2D U(1) on the torus (winding move; Albandea et al.,
arXiv:2106.14234).

Proposal theta -> wrap(theta + s F), s = +1 or -1 with probability 1/2 each and F
the constant-field-strength shift of :func:`physml.lattice.u1.flux_field` (every
plaquette angle moves by s 2 pi / V, so the geometric charge Q moves by s unless a
plaquette crosses +-pi).  The proposal is symmetric (s and -s are equally likely
and undo each other), so the Metropolis accept probability is min(1, exp(-Delta S))
with Delta S = S(theta') - S(theta); the move leaves exp(-S) times the Haar measure
invariant, chain by chain.  It is exact at any beta and does not depend on a step
size; its acceptance falls only slowly with beta (the action changes by about
beta (2 pi / V)^2 V / 2 for smooth fields).
"""

from __future__ import annotations

import torch

from physml.lattice.theory import Theory


def flux_move(theory: Theory, x: torch.Tensor, action: torch.Tensor, field: torch.Tensor,
              generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One flux move per chain: returns (new x, its action S, accepted mask).

    ``x``: ``(n_chains, 2, L0, L1)``; ``action``: S(x), shape ``(n_chains,)``;
    ``field``: F from :func:`physml.lattice.u1.flux_field` for fields like ``x``.
    Random numbers: one uniform per chain for the sign s, then one for the accept test.
    """
    n = x.shape[0]
    per_chain = (n,) + (1,) * (x.dim() - 1)
    up = torch.rand(n, generator=generator, dtype=x.dtype, device=x.device) < 0.5
    proposal = theory.project(torch.where(up.view(per_chain), x + field, x - field))
    s1 = theory.action(proposal)
    u = torch.rand(n, generator=generator, dtype=x.dtype, device=x.device)
    accept = u < torch.exp(action - s1)
    return torch.where(accept.view(per_chain), proposal, x), torch.where(accept, s1, action), accept
