"""The output comparison the compatibility suite relies on tells real differences apart
from last-digit rounding."""

from compat_outputs import differences


def test_same_output_agrees():
    text = "loss 0.1234 [16/96]\ntensor([1., 2.], grad_fn=<AddBackward0>)\n"
    assert differences(text, text) == []


def test_last_digit_rounding_agrees():
    assert differences("loss 0.1235 x 1.2346e-05", "loss 0.1234 x 1.2345e-05") == []


def test_numbers_beyond_rounding_differ():
    assert differences("loss 0.1237", "loss 0.1234")
    assert differences("tensor([1.5000e-05])", "tensor([1.5200e-05])")


def test_whole_numbers_are_exact():
    assert differences("correct 13/24", "correct 12/24")
    assert differences("n: [1. 1. 1.]", "n: [2. 2. 2.]")


def test_text_is_exact():
    assert differences("grad_fn=<NllLossBackward0>", "grad_fn=<AddBackward0>")
    assert differences("a\nb\n", "a\n")
    assert differences("torch.float32", "torch.float64")


def test_special_values_and_addresses():
    assert differences("tensor([-inf, nan])", "tensor([-inf, nan])") == []
    assert differences("tensor([inf])", "tensor([-inf])")
    assert differences("<AddBackward0 object at 0x7f00aa>",
                       "<AddBackward0 object at 0x7f1234>") == []
