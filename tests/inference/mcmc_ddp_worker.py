"""The chains of pgen.sample spread over the ranks of a torch.distributed job, or in one
process without torchrun's environment: ``python -m tests.inference.mcmc_ddp_worker OUT``."""

import os
import sys

import numpy as np
import pyro
import pyro.distributions as dist
import torch

import pgen
from pgen.inference.svi.distributed import init_from_environment, shutdown


def model(x):
    mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
    sigma = pyro.sample("sigma", dist.HalfNormal(2.0))
    with pyro.plate("n", len(x)):
        pyro.sample("obs", dist.Normal(mu, sigma), obs=x)


def main():
    init_from_environment()
    from pgen.inference.mcmc import sampling

    ran = []
    original = sampling.sequential_chains

    def counted(kernel, seeds, *args, **kwargs):
        ran.extend(seeds)
        return original(kernel, seeds, *args, **kwargs)

    sampling.sequential_chains = counted  # to see which chains this process ran
    x = torch.randn(30, generator=torch.Generator().manual_seed(0)) + 1.0
    r = pgen.sample(
        model, x, chains=3, warmup=60, draws=40, seed=3, progress=False, parallel=False, warn=False
    )
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    np.savez(f"{sys.argv[1]}.{rank}.npz", mu=r.draws_of("mu"), sigma=r.draws_of("sigma"), ran=np.array(ran))
    shutdown()
    # Skip the interpreter's teardown: the C++ runtime of torch 2.13 has been seen (once, in
    # CI) to abort a gloo rank at exit after a clean destroy_process_group.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
