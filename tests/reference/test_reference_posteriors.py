"""pgen.sample with its defaults on reference posteriors of varied geometry (issue 16):
means within 0.1 posterior sd and sds within 10% of the reference (a closed form, or a
long checked run stored in reference_summaries.json), on a fixed seed."""

import warnings

import numpy as np
import pytest

import pgen

from .posteriors import REFERENCES, reference, scalar_draws


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_defaults_reach_the_reference(name):
    model, args, _ = REFERENCES[name]
    ref = reference(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = pgen.sample(model, *args, seed=0, progress=False)
    draws = scalar_draws(r.samples)
    assert set(ref) <= set(draws)
    for parameter, (mean, sd) in ref.items():
        d = draws[parameter]
        assert abs(d.mean() - mean) < 0.1 * sd, (parameter, d.mean(), mean, sd)
        assert abs(d.std() / sd - 1) < 0.1, (parameter, d.std(), sd)


def test_the_stored_references_are_complete():
    for name in REFERENCES:
        ref = reference(name)
        assert ref and all(np.isfinite(m) and sd > 0 for m, sd in ref.values()), name
