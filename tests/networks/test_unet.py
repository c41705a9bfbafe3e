"""UNet: shapes, the skip connections, clear errors, and that it learns a shift."""
import pytest
import torch

from pyanomaly.models.frame_predictor import FramePredictor
from pyanomaly.networks.meta import UNet
from testutils import moving_bar


def test_output_shape_range_and_parameter_widths():
    net = UNet(in_channels=3, history=4, base_channels=8, depth=3)
    y = net(torch.rand(2, 4, 3, 32, 48))
    assert y.shape == (2, 3, 32, 48) and 0 <= y.min() and y.max() <= 1
    assert net.down[0][0].in_channels == 12  # 4 frames x 3 channels stacked
    assert [level[0].out_channels for level in net.down] == [8, 16, 32, 64]
    assert [level[0].in_channels for level in net.up] == [64, 32, 16]  # upsampled + skip


def test_every_input_pixel_column_can_reach_the_output_through_the_skips():
    net = UNet(in_channels=1, history=2, base_channels=4, depth=2, batch_norm=False).eval()
    x = torch.rand(1, 2, 1, 16, 16, requires_grad=True)
    net(x)[0, 0, 5, 7].backward()
    assert x.grad[0, :, 0, 5, 7].abs().sum() > 0  # the full-resolution path carries the pixel itself


@pytest.mark.parametrize("shape, match", [((2, 3, 1, 16, 16), r"expects \(B, 4, 1, H, W\)"),
                                          ((2, 4, 3, 16, 16), "in_channels=1"),
                                          ((2, 4, 1, 12, 16), "multiples of 8")])
def test_wrong_inputs_are_named(shape, match):
    with pytest.raises(ValueError, match=match):
        UNet(in_channels=1, history=4, base_channels=4, depth=3)(torch.rand(*shape))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="depth"):
        UNet(depth=0)


def test_learns_a_moving_bar_in_a_frame_predictor():
    torch.manual_seed(0)
    model = FramePredictor(network=dict(type="UNet", in_channels=1, history=3, base_channels=8, depth=2),
                           clip_length=4, residual=True)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    clips = moving_bar(8, 4, 16)
    first = None
    for _ in range(60):
        loss = sum(model({"frames": clips}).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    copy_last = float(((clips[:, -2] - clips[:, -1]) ** 2).mean())
    assert loss.item() < 0.2 * copy_last < first  # well below doing nothing
