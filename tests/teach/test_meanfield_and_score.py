import itertools

import numpy as np
import pytest
import torch

from pgen.teach import (
    ising_elbo,
    ising_log_z,
    jacobian_trace,
    mean_field_ising,
    random_ising,
    score_matching_objectives,
)


def test_log_z_by_enumeration_matches_a_brute_force_sum():
    w, b = random_ising(4, seed=2)
    total = 0.0
    for state in itertools.product((-1.0, 1.0), repeat=4):
        x = torch.tensor(state, dtype=torch.float64)
        total += float(torch.exp(b @ x + 0.5 * x @ w @ x))
    log_z, means = ising_log_z(w, b)
    assert log_z == pytest.approx(np.log(total), rel=1e-12)
    assert means.abs().max() < 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_coordinate_update_raises_the_elbo_which_bounds_log_z(seed):
    w, b = random_ising(10, coupling=0.4, seed=seed)
    run = mean_field_ising(w, b, sweeps=40, seed=seed)
    steps = np.diff(run.elbos)
    assert (steps >= -1e-12).all()  # CAVI: each q_j update maximizes the ELBO over q_j
    assert run.elbos[-1] <= run.log_z + 1e-12
    assert steps[-10:].max() < 1e-8  # converged
    # a product distribution whose means equal the exact marginals would not beat the optimum
    assert ising_elbo(w, b, run.means) >= ising_elbo(w, b, run.exact_means.clamp(-0.999, 0.999)) - 1e-9
    # with no couplings mean field is exact
    free = mean_field_ising(torch.zeros(10, 10, dtype=torch.float64), b, sweeps=1)
    assert free.elbos[-1] == pytest.approx(free.log_z, abs=1e-12)
    torch.testing.assert_close(free.means, free.exact_means)


def test_bad_models_are_explained():
    with pytest.raises(ValueError, match="symmetric"):
        mean_field_ising(torch.tensor([[0.0, 1.0], [0.0, 0.0]]), torch.zeros(2))
    with pytest.raises(ValueError, match="zero diagonal"):
        ising_log_z(torch.eye(2), torch.zeros(2))
    with pytest.raises(ValueError, match="d must be <= 20"):
        ising_log_z(torch.zeros(21, 21), torch.zeros(21))


def test_explicit_and_implicit_score_matching_differ_by_the_same_constant():
    mean = torch.tensor([1.0, -0.5], dtype=torch.float64)
    cov = torch.tensor([[1.0, 0.6], [0.6, 2.0]], dtype=torch.float64)
    prec = torch.linalg.inv(cov)
    g = torch.Generator().manual_seed(0)
    x = mean + torch.randn(20000, 2, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T

    def true_score(z):
        return -(z - mean) @ prec

    constant = 0.5 * float(torch.trace(prec))  # E ||Sigma^-1 (x - mu)||^2 / 2
    for scale, shift in [(0.5, 0.0), (1.0, 1.0), (2.0, -1.0), (3.0, 0.3)]:
        a = scale * torch.tensor([[1.0, 0.2], [0.2, 0.7]], dtype=torch.float64)

        def model_score(z, a=a, shift=shift):
            return -(z - shift) @ a + torch.sin(z)  # nonlinear: its Jacobian varies with z

        obj = score_matching_objectives(model_score, x, true_score)
        assert obj.difference == pytest.approx(constant, abs=4 * obj.difference_se)
    z = torch.randn(5, 2, dtype=torch.float64)
    torch.testing.assert_close(jacobian_trace(lambda v: v**2, z), 2 * z.sum(-1))


def test_gradient_estimators_are_unbiased_and_reparameterization_has_the_least_variance():
    from pgen.teach import ESTIMATORS, gradient_estimates, gradient_variance_curve

    a = torch.tensor([2.0, -1.0], dtype=torch.float64)
    mu = torch.tensor([0.5, 0.0], dtype=torch.float64)
    sigma = torch.tensor([1.0, 0.5], dtype=torch.float64)
    exact = torch.cat([2 * (mu - a), 2 * sigma])

    def f(z):
        return ((z - a) ** 2).sum(-1)

    est = gradient_estimates(f, mu, sigma, num_samples=8, repeats=4000, seed=3)
    for name in ESTIMATORS:
        v = est[name]
        se = v.std(0) / np.sqrt(len(v))
        assert ((v.mean(0) - exact).abs() <= 4 * se + 1e-9).all(), name
    var = {k: float(v.var(0).sum()) for k, v in est.items()}
    assert var["reparameterization"] < var["score function + baseline"] < var["score function"]
    study = gradient_variance_curve(f, mu, sigma, sample_sizes=(4, 16), repeats=3000)
    for name in ESTIMATORS[:2]:
        # means of S i.i.d. terms: quadrupling S divides the variance by 4 (a variance from
        # 3000 estimates has a sampling error near 5%, its ratio with another near 8%)
        assert 3.0 < study.variance[name][0] / study.variance[name][1] < 5.3
    # the leave-one-out baseline also improves with S: its variance falls faster than 1/S
    assert study.variance[ESTIMATORS[2]][0] / study.variance[ESTIMATORS[2]][1] > 4.0
    with pytest.raises(ValueError, match="sigma > 0"):
        gradient_estimates(f, mu, -sigma, num_samples=4)
