"""Running chains: one after another in this process, or in forked processes, each
seeded, with a progress bar per chain."""

from __future__ import annotations

import multiprocessing
import pickle
import signal
import time
import traceback
from collections import Counter
from collections.abc import Callable

import numpy as np
import pyro
import torch
from pyro.infer.mcmc.mcmc_kernel import MCMCKernel
from tqdm.auto import tqdm

from ...checks import check_choice
from ..kernels.base import as_pgen_kernel
from ..kernels.hmc import HMC, NUTS
from ..potential import model_error

__all__ = [
    "KERNELS",
    "make_kernel",
    "run_chain",
    "unbatch",
    "Bars",
    "parallel_chains",
    "sequential_chains",
    "ChainsStopped",
]

KERNELS = ("nuts", "hmc")


def make_kernel(
    kernel, model, *, jit, init, target_accept, max_tree_depth, dense_mass, metric_init, step_size, num_steps
):
    if isinstance(kernel, MCMCKernel):
        return as_pgen_kernel(kernel)
    if not isinstance(kernel, str):
        raise TypeError(
            "kernel must be 'nuts', 'hmc' or a pyro.infer.mcmc MCMCKernel instance; "
            f"got {type(kernel).__name__}"
        )
    name = check_choice("kernel", kernel, KERNELS)
    common = dict(
        step_size=step_size,
        dense_mass=dense_mass,
        metric_init=metric_init,
        target_accept=target_accept,
        init=init,
        jit=jit,
    )
    if name == "nuts":
        return NUTS(model, max_tree_depth=max_tree_depth, **common)
    return HMC(model, num_steps=num_steps, **common)


def _failures(kernel) -> Counter:
    """A kernel's count of the points where the model could not be evaluated (pgen's
    kernels keep one; for others it is empty)."""
    return Counter(getattr(kernel, "failures", None) or {})


def run_chain(
    kernel, chain: int, seed: int, warmup: int, draws: int, args, kwargs, report: Callable, store=None
):
    """One chain; returns unconstrained draws by site, statistics, timings and the
    reasons of the rejected points where the model could not be evaluated. With a
    :class:`~pgen.inference.mcmc.checkpoint.ChainStore`, the chain is checkpointed as it
    goes and, when resuming, continues from its checkpoint (a finished one is returned
    as it was)."""
    saved = store.load(chain) if store is not None else None
    if saved is not None and saved["i"] == warmup + draws:
        return _finished(saved, seed)
    pyro.set_rng_seed(seed)
    before = _failures(kernel)  # a kernel used for several chains keeps counting
    start = time.perf_counter()
    try:
        kernel.setup(warmup, *args, **kwargs)
    except TypeError as error:
        if "arguments given failed" in str(error):
            raise
        raise model_error(error, args=args, kwargs=kwargs) from error
    params = kernel.initial_params
    kept: dict[str, list] = {name: [] for name in params}
    stats: dict[str, list] = {}
    first = 0
    warmup_time, earlier = 0.0, 0.0  # earlier: seconds spent before a resumed run
    after_warmup = _failures(kernel)
    if saved is not None:
        kernel.load_state_dict(saved["kernel"])
        params = kernel.initial_params  # the restored point's (passing others would move the chain)
        first, earlier, warmup_time = saved["i"], saved["seconds"], saved["warmup_time"]
        kept = {k: list(v.unbind(0)) for k, v in saved["kept"].items()}
        stats = {k: v.tolist() for k, v in saved["stats"].items()}
        after_warmup = Counter(saved["after_warmup"])
        before = Counter(saved["before"])
    for i in range(first, warmup + draws):
        params = kernel.sample(params)
        if i == warmup - 1:
            warmup_time = earlier + time.perf_counter() - start
            after_warmup = _failures(kernel)
        if i >= warmup:
            for name, value in params.items():
                kept[name].append(value.detach().cpu().clone())
            for key, value in (kernel.last_stats or {}).items():
                stats.setdefault(key, []).append(value)
        report(chain, i, kernel)
        if store is not None and ((i + 1) % store.every == 0 or i + 1 == warmup + draws):
            store.save(
                chain,
                i=i + 1,
                kept=kept,
                stats=stats,
                kernel_state=kernel.state_dict(),
                extra={
                    "seconds": earlier + time.perf_counter() - start,
                    "warmup_time": warmup_time,
                    "after_warmup": dict(after_warmup),
                    "before": dict(before),
                },
            )
    total = earlier + time.perf_counter() - start
    if warmup == 0:
        warmup_time = 0.0
    out = {  # one leading chain axis per run; a batched kernel's run is reshaped by unbatch
        "params": {name: torch.stack(values).cpu().numpy()[None] for name, values in kept.items()},
        "stats": {k: np.asarray(v)[None] for k, v in stats.items()},
        "warmup_time": warmup_time,
        "sampling_time": total - warmup_time,
        "transforms": getattr(kernel, "transforms", None) or {},
        "failures": dict(_failures(kernel) - before),
        "failures_after_warmup": sum((_failures(kernel) - after_warmup).values()),
        "seed": seed,
        "metric_notes": list(getattr(kernel, "metric_notes", None) or []),
        "mode_metric": getattr(kernel, "mode_metric", None),
    }
    kernel.cleanup()
    return out


def _finished(saved: dict, seed: int) -> dict:
    """A finished chain's result, from its last checkpoint."""
    k = saved["kernel"]
    failures = Counter(k["failures"])
    own = failures - Counter(saved["before"])
    return {
        "params": {name: v.numpy()[None] for name, v in saved["kept"].items()},
        "stats": {name: v.numpy()[None] for name, v in saved["stats"].items()},
        "warmup_time": saved["warmup_time"],
        "sampling_time": saved["seconds"] - saved["warmup_time"],
        "transforms": {},
        "failures": dict(own),
        "failures_after_warmup": sum((failures - Counter(saved["after_warmup"])).values()),
        "seed": seed,
        "metric_notes": list(k["metric_notes"]),
        "mode_metric": k["mode_metric"],
    }


def unbatch(run: dict, batch: int) -> dict:
    """A run of ``batch`` chains held as one tensor, ``(1, draws, batch, ...)``, as
    ``batch`` chains ``(batch, draws, ...)``; per-draw statistics are per chain
    ``(1, draws, batch)`` or shared ``(1, draws)``."""
    params = {name: np.moveaxis(v[0], 1, 0) for name, v in run["params"].items()}
    stats = {}
    for key, v in run["stats"].items():
        v = v[0]
        stats[key] = (
            np.moveaxis(v, 1, 0) if v.ndim == 2 and v.shape[1] == batch else np.repeat(v[None], batch, 0)
        )
    return {**run, "params": params, "stats": stats}


class Bars:
    """One tqdm bar per chain, refreshed at most twice a second."""

    def __init__(self, chains: int, warmup: int, draws: int, enabled: bool, parallel: bool):
        self.enabled, self.warmup, self.total = enabled, warmup, warmup + draws
        self.bars: dict[int, tqdm] = {}
        self.chains, self.parallel = chains, parallel
        self.last = 0.0

    def bar(self, chain: int) -> tqdm:
        if chain not in self.bars:
            self.bars[chain] = tqdm(
                total=self.total,
                desc=f"chain {chain + 1}/{self.chains} warmup"
                if self.warmup
                else f"chain {chain + 1}/{self.chains} sample",
                unit="it",
                position=chain if self.parallel else None,
                leave=True,
                disable=not self.enabled,
            )
        return self.bars[chain]

    def update(self, chain: int, i: int, postfix=None):
        bar = self.bar(chain)
        bar.n = i + 1
        if i + 1 == self.warmup:
            bar.set_description(f"chain {chain + 1}/{self.chains} sample", refresh=False)
        now = time.perf_counter()
        if now - self.last > 0.5 or i + 1 == self.total:
            if postfix:
                bar.set_postfix(postfix, refresh=False)
            bar.refresh()
            self.last = now

    def close(self):
        for bar in self.bars.values():
            bar.close()


class ChainsStopped(Exception):
    """Chains stopped before all of them finished (Ctrl-C, or a chain failed).

    Attributes:
        reason: what happened, in words.
        runs: the chains that finished, as :func:`run_chain` returns them.
        original: the exception that stopped them.
    """

    def __init__(self, reason: str, runs: list[dict], original: BaseException):
        super().__init__(reason)
        self.reason, self.runs, self.original = reason, runs, original


def sequential_chains(kernel, seeds, warmup, draws, args, kwargs, report, store=None) -> list[dict]:
    """Run the chains one after another. A chain that fails does not stop the others (as
    in :func:`parallel_chains`); Ctrl-C stops them all. Either way
    :class:`ChainsStopped` keeps the chains that finished."""
    runs: list[dict] = []
    failed: dict[int, BaseException] = {}
    for chain, seed in enumerate(seeds):
        try:
            runs.append(run_chain(kernel, chain, seed, warmup, draws, args, kwargs, report, store))
        except KeyboardInterrupt as stop:
            raise ChainsStopped(
                f"interrupted (Ctrl-C) during chain {chain + 1} of {len(seeds)}", runs, stop
            ) from stop
        except Exception as error:  # noqa: BLE001 - kept, and the other chains run
            if not runs and isinstance(error, (TypeError, ValueError)):
                raise  # the model or its arguments are wrong: every chain would fail the same way
            failed[chain] = error
    if failed:
        first = min(failed)
        error = failed[first]
        what = (
            f"{len(failed)} of {len(seeds)} chains failed; chain {first + 1}: {type(error).__name__}: {error}"
        )
        raise ChainsStopped(what, runs, error) from error
    return runs


def parallel_chains(kernel, seeds, warmup, draws, args, kwargs, bars: Bars, store=None) -> list[dict]:
    """Run chains in forked processes; each sends progress and its result back. A chain
    that fails does not stop the others; :class:`ChainsStopped` keeps the finished ones."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()

    def worker(chain: int, seed: int):
        # The parent may have a SIGTERM handler (the CLI's turns it into Ctrl-C); the parent
        # ends a chain's process with SIGTERM, which must simply end it.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        torch.set_num_threads(1)

        def report(c, i, k):
            if (i + 1) % 25 == 0 or i + 1 == warmup + draws:
                queue.put(("tick", c, i, None))

        try:
            result = run_chain(kernel, chain, seed, warmup, draws, args, kwargs, report, store)
            result["transforms"] = None  # rebuilt in the parent (transforms need not pickle)
            queue.put(("done", chain, result, None))
        except BaseException as error:  # noqa: BLE001 - sent to the parent
            queue.put(("error", chain, _picklable(error), traceback.format_exc()))

    processes = [context.Process(target=worker, args=(c, s), daemon=True) for c, s in enumerate(seeds)]
    for p in processes:
        p.start()
    results: dict[int, dict] = {}
    failed: dict[int, BaseException] = {}
    try:
        while len(results) + len(failed) < len(seeds):
            kind, chain, payload, extra = queue.get()
            if kind == "tick":
                bars.update(chain, payload)
            elif kind == "done":
                results[chain] = payload
            else:
                failed[chain] = payload
                payload.chain_traceback = extra  # where it failed, in the chain's process
    except KeyboardInterrupt as stop:
        done = [results[c] for c in sorted(results)]
        raise ChainsStopped(
            f"interrupted (Ctrl-C) with {len(done)} of {len(seeds)} chains done", done, stop
        ) from stop
    finally:
        for p in processes:
            if len(results) + len(failed) == len(seeds):
                p.join(timeout=10)  # a finished chain's process is flushing its queue
            if p.is_alive():
                p.terminate()
            p.join()
    if failed:
        first = min(failed)
        error = failed[first]
        what = (
            f"{len(failed)} of {len(seeds)} chains failed; chain {first + 1}: {type(error).__name__}: {error}"
        )
        raise ChainsStopped(what, [results[c] for c in sorted(results)], error)
    return [results[c] for c in range(len(seeds))]


def _picklable(error: BaseException) -> BaseException:
    """``error`` itself if it survives pickling (to be raised again in the parent with
    its own type), else a ``RuntimeError`` with its type and message."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001 - any failure to pickle
        return RuntimeError(f"{type(error).__name__}: {error}")
