"""nnlib.sgd: shapes, gradients against finite differences and torch, loop == matrix, training."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from nnlib.data import load_digits, one_hot
from nnlib.sgd import Network, accuracy_grid, sigmoid, torch_gradients, torch_loss, torch_step


def random_batch(sizes, m, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.random((sizes[0], 1)), one_hot(rng.integers(sizes[-1]), sizes[-1])) for _ in range(m)]


def test_shapes_follow_nielsen():
    net = Network([4, 3, 2], seed=0)
    assert [w.shape for w in net.weights] == [(3, 4), (2, 3)]
    assert [b.shape for b in net.biases] == [(3, 1), (2, 1)]
    assert net.feedforward(np.zeros((4, 1))).shape == (2, 1)
    assert net.feedforward(np.zeros((4, 7))).shape == (2, 7)


def test_seed_makes_init_repeatable_and_standard_normal():
    a, b = Network([50, 40, 30], seed=3), Network([50, 40, 30], seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a.weights, b.weights))
    w = np.concatenate([x.ravel() for x in a.weights])
    assert abs(w.mean()) < 0.05 and abs(w.std() - 1) < 0.05


def numeric_gradient(net, x, y, eps=1e-6):
    """Central differences of C = 1/2 ||a - y||^2 with respect to every weight and bias."""
    def cost():
        return 0.5 * float(np.sum((net.feedforward(x) - y) ** 2))
    grads = []
    for params in (net.biases, net.weights):
        layer_grads = []
        for p in params:
            g = np.zeros_like(p)
            for idx in np.ndindex(p.shape):
                old = p[idx]
                p[idx] = old + eps
                up = cost()
                p[idx] = old - eps
                down = cost()
                p[idx] = old
                g[idx] = (up - down) / (2 * eps)
            layer_grads.append(g)
        grads.append(layer_grads)
    return grads


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(1, 5), min_size=2, max_size=4), seed=st.integers(0, 10_000))
def test_backprop_matches_finite_differences(sizes, seed):
    net = Network(sizes, seed=seed)
    (x, y), = random_batch(sizes, 1, seed)
    nabla_b, nabla_w = net.backprop(x, y)
    num_b, num_w = numeric_gradient(net, x, y)
    assert len(nabla_b) == len(nabla_w) == len(sizes) - 1
    for got, want in zip(nabla_b + nabla_w, num_b + num_w, strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-7, rtol=1e-5)


def test_backprop_matches_torch_autograd():
    torch = pytest.importorskip("torch")
    net = Network([6, 5, 4, 3], seed=1)
    (x, y), = random_batch(net.sizes, 1, 2)
    ws = [torch.tensor(w, requires_grad=True) for w in net.weights]
    bs = [torch.tensor(b, requires_grad=True) for b in net.biases]
    a = torch.tensor(x)
    for w, b in zip(ws, bs):
        a = torch.sigmoid(w @ a + b)
    (0.5 * ((a - torch.tensor(y)) ** 2).sum()).backward()
    nabla_b, nabla_w = net.backprop(x, y)
    assert len(nabla_w) == len(nabla_b) == 3
    for got, t in zip(nabla_w + nabla_b, ws + bs, strict=True):
        assert got.shape == tuple(t.shape)
        np.testing.assert_allclose(got, t.grad.numpy(), atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(sizes=st.lists(st.integers(1, 12), min_size=2, max_size=4), m=st.integers(1, 16),
       eta=st.floats(0.01, 10), seed=st.integers(0, 10_000))
def test_loop_equals_matrix(sizes, m, eta, seed):
    loop = Network(sizes, seed=seed)
    matrix, start = loop.copy(), loop.copy()
    batch = random_batch(sizes, m, seed)
    loop.update_mini_batch(batch, eta)
    matrix.update_mini_batch_matrix(batch, eta)
    assert not np.array_equal(matrix.biases[-1], start.biases[-1]), "the matrix step changed nothing"
    for a, b in zip(loop.weights + loop.biases, matrix.weights + matrix.biases, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-10, rtol=0)


def test_torch_sgd_step_equals_update_mini_batch():
    pytest.importorskip("torch")
    net = Network([64, 30, 10], seed=0)
    batch = random_batch(net.sizes, 10, 5)
    before = [p.copy() for p in net.weights + net.biases]
    weights, biases = torch_step(net, batch, 3.0)
    assert all(np.array_equal(a, b) for a, b in zip(net.weights + net.biases, before, strict=True)), \
        "torch_step must leave net as it was"
    net.update_mini_batch(batch, 3.0)
    assert not np.array_equal(net.weights[0], before[0])  # the step moved something
    for a, b in zip(net.weights + net.biases, weights + biases, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12)


def test_update_moves_downhill():
    net = Network([8, 6, 3], seed=0)
    batch = random_batch(net.sizes, 20, 1)
    before = net.total_cost(batch)
    net.update_mini_batch(batch, 0.5)
    assert net.total_cost(batch) < before


def test_dividing_by_the_batch_size_makes_duplicates_harmless():
    """Repeating every example k times leaves the step unchanged: the update uses the mean."""
    a = Network([5, 4, 2], seed=0)
    b, start = a.copy(), a.copy()
    batch = random_batch(a.sizes, 3, 0)
    a.update_mini_batch(batch, 1.0)
    b.update_mini_batch(batch * 4, 1.0)
    assert not np.array_equal(b.weights[-1], start.weights[-1]), "the step changed nothing"
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_allclose(x, y, atol=1e-12)


def test_sgd_reaches_90_percent_on_digits():
    training, validation, test = load_digits()
    net = Network([64, 30, 10], seed=0)
    history = net.SGD(training, 15, 10, 3.0, test_data=test, progress=False)
    assert history.epoch == list(range(0, 16))
    assert history.accuracy[-1] >= 0.90
    assert net.evaluate(test) / len(test) == history.accuracy[-1]
    assert history.cost[-1] < history.cost[0]


def test_sgd_without_test_data_records_cost_only():
    training, _, _ = load_digits()
    history = Network([64, 10], seed=0).SGD(training[:100], 2, 10, 1.0, progress=False)
    assert history.accuracy == [] and len(history.cost) == 3


def test_evaluate_counts_right_answers():
    net = Network([2, 2], seed=0)
    net.weights = [np.array([[10.0, 0.0], [0.0, 10.0]])]
    net.biases = [np.zeros((2, 1))]
    data = [(np.array([[1.0], [0.0]]), 0), (np.array([[0.0], [1.0]]), 1), (np.array([[0.0], [1.0]]), 0)]
    assert net.evaluate(data) == 2
    assert net.evaluate([]) == 0


def test_cost_derivative_is_dC_da_by_hand_and_by_finite_differences():
    """C = 1/2 ||a - y||^2, so dC/da_j = a_j - y_j. By hand for a = (0.2, 0.9), y = (0, 1):
    (0.2 - 0, 0.9 - 1) = (0.2, -0.1). And for random a, y: central differences of C itself."""
    net = Network([1, 2])
    a, y = np.array([[0.2], [0.9]]), np.array([[0.0], [1.0]])
    np.testing.assert_allclose(net.cost_derivative(a, y), [[0.2], [-0.1]], atol=1e-15)
    rng = np.random.default_rng(0)
    a, y = rng.random((4, 1)), rng.random((4, 1))
    eps = 1e-6

    def cost(v):
        return 0.5 * float(np.sum((v - y) ** 2))

    numeric = np.zeros_like(a)
    for j in range(4):
        step = np.zeros_like(a)
        step[j] = eps
        numeric[j] = (cost(a + step) - cost(a - step)) / (2 * eps)
    np.testing.assert_allclose(net.cost_derivative(a, y), numeric, atol=1e-8)


def test_sigmoid_worked_by_hand():
    # 1 / (1 + e^0) = 1/2; 1 / (1 + e^-2) = 1 / 1.135335 = 0.880797; sigma(-z) = 1 - sigma(z)
    assert sigmoid(np.array(0.0)) == 0.5
    np.testing.assert_allclose(sigmoid(np.array([2.0, -2.0])), [0.880797, 0.119203], atol=1e-6)


@pytest.mark.parametrize("sizes, message", [
    ([3], "at least two layers"),
    ([], "at least two layers"),
    ([3, 0, 2], "Layer 1 has size 0"),
    ([3, 2.5], "Layer 1 has size 2.5"),
])
def test_bad_sizes(sizes, message):
    with pytest.raises(ValueError, match=message):
        Network(sizes)


@pytest.mark.parametrize("eta", [0, -1.0])
def test_bad_eta(eta):
    net = Network([2, 1], seed=0)
    batch = random_batch(net.sizes, 2)
    for method in (net.update_mini_batch, net.update_mini_batch_matrix):
        with pytest.raises(ValueError, match="eta .* must be > 0"):
            method(batch, eta)
    with pytest.raises(ValueError, match="eta"):
        net.SGD(batch, 1, 1, eta, progress=False)


def test_empty_mini_batch():
    net = Network([2, 1], seed=0)
    for method in (net.update_mini_batch, net.update_mini_batch_matrix):
        with pytest.raises(ValueError, match="mini-batch is empty"):
            method([], 1.0)


def test_wrong_input_shape_names_both_shapes():
    net = Network([64, 30, 10], seed=0)
    with pytest.raises(ValueError, match=r"shape \(784, 1\).*64 inputs.*\(64, 1\)"):
        net.backprop(np.zeros((784, 1)), one_hot(3))
    with pytest.raises(ValueError, match=r"shape \(64,\)"):
        net.feedforward(np.zeros(64))
    with pytest.raises(ValueError, match="one example"):
        net.backprop(np.zeros((64, 2)), one_hot(3))
    with pytest.raises(ValueError, match=r"y has shape \(3, 1\)"):
        net.backprop(np.zeros((64, 1)), one_hot(1, 3))


def test_bad_sgd_arguments():
    net = Network([2, 1], seed=0)
    batch = random_batch(net.sizes, 2)
    with pytest.raises(ValueError, match="mini_batch_size"):
        net.SGD(batch, 1, 0, 1.0, progress=False)
    with pytest.raises(ValueError, match="epochs"):
        net.SGD(batch, -1, 1, 1.0, progress=False)


def test_history_starts_at_epoch_0_with_the_untrained_network():
    training, validation, _ = load_digits()
    net = Network([64, 10, 10], seed=4)
    untrained = net.copy()
    history = net.SGD(training[:50], 1, 10, 1.0, test_data=validation, progress=False)
    assert history.epoch == [0, 1]
    assert history.accuracy[0] == untrained.evaluate(validation) / len(validation)
    assert history.cost[0] == pytest.approx(untrained.total_cost(training[:50]))


@settings(max_examples=15, deadline=None)
@given(sizes=st.lists(st.integers(1, 6), min_size=2, max_size=4), m=st.integers(1, 9),
       seed=st.integers(0, 10_000))
def test_backprop_matrix_sums_over_the_batch_like_autograd(sizes, m, seed):
    """Independent reference: autograd of the *summed* cost; the bias gradient is (n, 1)."""
    torch = pytest.importorskip("torch")
    net = Network(sizes, seed=seed)
    X, Y = net.stack(random_batch(sizes, m, seed))
    ws = [torch.tensor(w, requires_grad=True) for w in net.weights]
    bs = [torch.tensor(b, requires_grad=True) for b in net.biases]
    a = torch.tensor(X)
    for w, b in zip(ws, bs):
        a = torch.sigmoid(w @ a + b)
    (0.5 * ((a - torch.tensor(Y)) ** 2).sum()).backward()
    nabla_b, nabla_w = net.backprop_matrix(X, Y)
    for got, t in zip(nabla_b + nabla_w, bs + ws, strict=True):
        assert got.shape == tuple(t.shape)
        np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("loss, scale", [
    ("nielsen", lambda m, n_out: 1 / m),              # 1/2 sum / m: the mean of C_x
    ("mse_mean", lambda m, n_out: 2 / (m * n_out)),   # F.mse_loss: mean over m*n_out, no 1/2
    ("mse_sum", lambda m, n_out: 2.0),                # reduction="sum": no mean at all
])
def test_torch_losses_scale_the_summed_gradient(loss, scale):
    """torch_gradients comes from autograd; nabla from nnlib's backprop (finite-difference
    checked above): their ratio is the factor each torch loss puts in front of the step."""
    pytest.importorskip("torch")
    net = Network([7, 5, 3], seed=2)
    batch = random_batch(net.sizes, 6, 3)
    nabla_b, nabla_w = net.backprop_matrix(*net.stack(batch))
    grad_b, grad_w = torch_gradients(net, batch, loss)
    for ours, theirs in zip(nabla_b + nabla_w, grad_b + grad_w, strict=True):
        np.testing.assert_allclose(theirs, scale(6, 3) * ours, rtol=1e-10, atol=1e-14)


def test_mse_mean_is_torch_functional_mse_loss():
    torch = pytest.importorskip("torch")
    a, y = torch.rand(10, 4, dtype=torch.float64), torch.rand(10, 4, dtype=torch.float64)
    assert torch_loss(a, y, "mse_mean").item() == pytest.approx(((a - y) ** 2).mean().item())
    assert torch_loss(a, y, "mse_sum").item() == pytest.approx(((a - y) ** 2).sum().item())
    with pytest.raises(ValueError, match="loss must be one of"):
        torch_loss(a, y, "mse")


@settings(max_examples=10, deadline=None)
@given(m=st.sampled_from([1, 2, 5, 10]), eta=st.floats(0.01, 2.0), seed=st.integers(0, 1000))
def test_dropping_the_mean_only_rescales_eta(m, eta, seed):
    """Nielsen's remark: stepping by the sum with eta is the mean's step with eta * m (when every
    mini-batch has m examples)."""
    summed, mean = Network([6, 4, 3], seed=seed), Network([6, 4, 3], seed=seed)
    data = random_batch(summed.sizes, 20, seed)
    summed.SGD(data, 2, m, eta, progress=False, average=False)
    mean.SGD(data, 2, m, eta * m, progress=False, average=True)
    for a, b in zip(summed.weights + summed.biases, mean.weights + mean.biases):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_accuracy_grid_is_one_sgd_run_per_cell():
    training, validation, _ = load_digits()
    etas, sizes = [0.5, 3.0], [5, 50]
    grid = accuracy_grid(training[:100], validation[:50], etas, sizes, steps=20,
                         average=False, sizes=(64, 8, 10), seed=1)
    assert grid.shape == (2, 2)
    # m=50 on 100 examples: 20 steps need 10 epochs
    net = Network([64, 8, 10], seed=1)
    history = net.SGD(training[:100], 10, 50, 3.0, test_data=validation[:50], progress=False,
                      average=False)
    assert grid[1, 1] == history.accuracy[-1]


def test_progress_bar_outside_a_notebook_shows_the_finished_run(capsys):
    training, _, _ = load_digits()
    Network([64, 10], seed=0).SGD(training[:30], 3, 10, 1.0, progress=True)
    assert "3/3" in capsys.readouterr().err


def test_train_epoch_is_what_sgd_runs():
    data = random_batch([5, 4, 2], 12, 0)
    a, b = Network([5, 4, 2], seed=0), Network([5, 4, 2], seed=0)
    a.SGD(data, 1, 4, 0.7, progress=False)
    b.train_epoch(*b.stack_rows(data), 4, 0.7)
    assert not np.array_equal(b.weights[0], Network([5, 4, 2], seed=0).weights[0]), "no step was taken"
    for x, y in zip(a.weights + a.biases, b.weights + b.biases, strict=True):
        np.testing.assert_array_equal(x, y)


def test_train_epoch_names_the_row_layout():
    net = Network([5, 4, 2], seed=0)
    X, Y = net.stack(random_batch(net.sizes, 3))  # columns: the wrong layout for train_epoch
    with pytest.raises(ValueError, match=r"takes rows.*stack_rows"):
        net.train_epoch(X, Y, 2, 1.0)
    with pytest.raises(ValueError, match="mini_batch_size"):
        net.train_epoch(X.T, Y.T, 0, 1.0)


def test_train_for_steps_takes_exactly_that_many_full_batch_steps():
    """With the whole data set as the mini-batch, the shuffle does not matter, so ``steps``
    updates must equal that many plain gradient-descent steps on the mean cost, done here with
    torch's autograd: a fixed number of updates, not of epochs rounded up."""
    torch = pytest.importorskip("torch")
    from nnlib.sgd import train_for_steps

    data = random_batch([5, 4, 3], 12, 3)
    net = Network([5, 4, 3], seed=2)
    ws = [torch.tensor(w, requires_grad=True) for w in net.weights]
    bs = [torch.tensor(b, requires_grad=True) for b in net.biases]
    X = torch.tensor(np.hstack([x for x, _ in data]))
    Y = torch.tensor(np.hstack([y for _, y in data]))
    for _ in range(7):
        a = X
        for w, b in zip(ws, bs):
            a = torch.sigmoid(w @ a + b)
        loss = 0.5 * ((a - Y) ** 2).sum() / X.shape[1]
        grads = torch.autograd.grad(loss, ws + bs)
        with torch.no_grad():
            for p, g in zip(ws + bs, grads):
                p -= 0.8 * g
    history = train_for_steps(net, data, 7, 12, 0.8, measurements=7)
    for got, want in zip(net.weights + net.biases, ws + bs):
        np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert history.step == list(range(8)) and history.epoch == [float(s) for s in range(8)]


def test_train_for_steps_counts_updates_not_epochs():
    """m = 4 on 12 examples: 3 updates per epoch, so 10 updates end a third of the way into the
    fourth epoch; the history's cost is the mean quadratic cost, checked by hand at the end."""
    from nnlib.sgd import train_for_steps

    data = random_batch([5, 4, 3], 12, 4)
    net = Network([5, 4, 3], seed=1)
    history = train_for_steps(net, data, 10, 4, 0.5, measurements=2)
    assert history.step == [0, 5, 10]
    assert history.epoch[-1] == pytest.approx(40 / 12)
    # the cost of the trained weights, from torch (its own forward pass and F.mse_loss): the
    # sum of (a - y)^2 over the 12 examples and 3 outputs, halved, over the 12 examples
    torch = pytest.importorskip("torch")
    a = torch.tensor(np.hstack([x for x, _ in data]))
    for w, b in zip(net.weights, net.biases, strict=True):
        a = torch.sigmoid(torch.tensor(w) @ a + torch.tensor(b))
    Y = torch.tensor(np.hstack([y for _, y in data]))
    reference = torch.nn.functional.mse_loss(a, Y, reduction="sum").item() / 2 / 12
    assert history.cost[-1] == pytest.approx(reference, rel=1e-12)
    with pytest.raises(ValueError, match="steps"):
        train_for_steps(net, data, -1, 4, 0.5)
