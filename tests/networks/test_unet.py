"""UNet: shapes, the skip connections, clear errors, that it learns a shift, and its outputs other than a frame."""
import pytest
import torch

from pyanomaly.engine.checkpoint import load_checkpoint
from pyanomaly.models.frame_predictor import FramePredictor
from pyanomaly.networks.fast import FastPath, using_fast_path
from pyanomaly.networks.meta import UNet
from testutils import REPO, moving_bar


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
    with pytest.raises(ValueError, match="out_channels"):
        UNet(out_channels=0)
    with pytest.raises(ValueError, match=r"out_activation must be one of \['none', 'sigmoid'\], got 'tanh'"):
        UNet(out_activation="tanh")


def test_stacked_inputs_to_an_unbounded_output_of_other_channels():
    torch.manual_seed(0)
    net = UNet(in_channels=10, history=1, base_channels=4, depth=2, out_channels=2, out_activation="none")
    assert net.down[0][0].in_channels == 10 and net.head.out_channels == 2
    y = net(torch.rand(3, 1, 10, 16, 24) * 4)
    assert y.shape == (3, 2, 16, 24)
    assert y.min() < 0  # no sigmoid: a flow goes either way
    y.sum().backward()
    assert net.down[0][0].weight.grad.abs().sum() > 0


def test_defaults_keep_the_published_layout_and_the_sigmoid():
    """The published U-Net's weights load as they are (out_channels defaults to in_channels), and
    its default output is the sigmoid of what ``out_activation="none"`` gives."""
    ckpt = load_checkpoint(REPO / "checkpoints" / "ped2_unet_native.pth")
    state = {k.removeprefix("net."): v.float() for k, v in ckpt["model"].items() if k.startswith("net.")}
    args = {k: v for k, v in ckpt["meta"]["model_args"]["network"].items() if k != "type"}
    net, logits = UNet(**args).eval(), UNet(**args, out_activation="none").eval()
    for m in (net, logits):
        assert not m.load_state_dict(state, strict=True).missing_keys
    assert torch.equal(net.state_dict()["head.weight"], state["head.weight"]) and net.head.out_channels == 1
    x = torch.rand(1, 4, 1, 16, 24, generator=torch.Generator().manual_seed(0))
    assert torch.equal(net(x), torch.sigmoid(logits(x)))  # grad enabled: the plain code, exact


@pytest.mark.parametrize("activation", ["sigmoid", "none"])
def test_fast_path_gives_the_plain_output_with_either_activation(activation):
    torch.manual_seed(0)
    net = UNet(in_channels=6, history=1, base_channels=4, depth=2, out_channels=2, out_activation=activation)
    with torch.no_grad():
        net(torch.rand(4, 1, 6, 16, 24))  # training mode: running statistics move off 0 and 1
    net.eval()
    x = torch.rand(2, 1, 6, 16, 24) * 3
    with torch.no_grad():
        with using_fast_path(net, FastPath.reference()):
            ref = net(x)
        out = net(x)
    assert (ref.min() < 0) == (activation == "none")
    torch.testing.assert_close(out, ref)


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
