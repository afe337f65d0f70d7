"""One rank of the data-parallel tests (tests/inference/test_distributed.py), run as
``python -m tests.inference.ddp_worker OUT GUIDE STEPS [CHECKPOINT_DIR [resume]]`` with
torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), or without it as the
one-process reference. With ``DIE_AT=K`` in the environment, rank 1 kills itself (no
clean-up, as SIGKILL) at its K-th call of the model."""

import os
import sys

import pyro
import pyro.distributions as dist
import torch

import pgen
from pgen.inference.guides import make_guide
from pgen.inference.svi.distributed import init_from_environment, shutdown

N = 24


def data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, 3, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3 * torch.randn(N, generator=g)
    return x, y


CALLS = [0]


def model(x, y=None):
    """A regression: global weights (a latent outside the data plate) and a data plate."""
    CALLS[0] += 1
    die_at = int(os.environ.get("DIE_AT", "0"))
    if die_at and CALLS[0] == die_at and os.environ.get("RANK") == "1":
        os._exit(9)
    w = pyro.sample("w", dist.Normal(torch.zeros(3), 1.0).to_event(1))
    with pyro.plate("data", len(x)):
        pyro.sample("obs", dist.Normal(x @ w, 0.3), obs=y)


def main():
    out, guide_name, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    checkpoint = sys.argv[4] if len(sys.argv) > 4 else None
    resume = len(sys.argv) > 5 and sys.argv[5] == "resume"
    init_from_environment()
    x, y = data()
    guide = make_guide(guide_name, model)
    result = pgen.fit(
        model,
        guide,
        (x, y),
        steps=steps,
        batch_size=8,
        lr=0.05,
        seed=5,
        progress=False,
        checkpoint_dir=checkpoint,
        resume=resume,
        checkpoint_every=1,
    )
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    torch.save(
        {"losses": torch.tensor(result.losses), "params": result.param_state["params"]}, f"{out}.{rank}.pt"
    )
    shutdown()
    # Skip the interpreter's teardown: the C++ runtime of torch 2.13 has been seen (once, in
    # CI) to abort a gloo rank at exit after a clean destroy_process_group.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
