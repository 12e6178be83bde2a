"""The exercise checkers accept right answers, reject the usual wrong ones, and never crash on a stub."""
from __future__ import annotations

from nnlib.exercises import sgd_from_scratch as ex


def stub(*_args):
    raise NotImplementedError


def test_sgd_update_checker(capsys):
    assert ex.check_sgd_update(lambda w, nw, eta, m: w - (eta / m) * nw)
    assert not ex.check_sgd_update(lambda w, nw, eta, m: w - eta * nw)
    assert "divide by m" in capsys.readouterr().out
    assert not ex.check_sgd_update(stub)
    assert "Not attempted yet" in capsys.readouterr().out


def test_parameter_count_checker(capsys):
    assert ex.check_parameter_count(lambda s: sum(a * b + b for a, b in zip(s[:-1], s[1:])))
    assert not ex.check_parameter_count(lambda s: sum(a * b + a + b for a, b in zip(s[:-1], s[1:])))
    assert not ex.check_parameter_count(stub)


def test_cross_entropy_checker(capsys):
    from nnlib.sgd import sigmoid_prime

    assert ex.check_cross_entropy_delta(lambda a, y, z: a - y)
    assert not ex.check_cross_entropy_delta(lambda a, y, z: (a - y) * sigmoid_prime(z))
    assert "quadratic" in capsys.readouterr().out
    assert not ex.check_cross_entropy_delta(stub)
