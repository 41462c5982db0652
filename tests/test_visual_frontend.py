import os
import re

import pytest
import torch

from fairseq_slt.models.visual_frontend import (
    MaskedBatchNorm1d,
    SignVisualEncoder,
    TemporalModule,
    build_resnet18,
    lengths_to_padding_mask,
    parse_temporal_spec,
    tconv_out_lengths,
)


@pytest.mark.parametrize("spec", ["K5", "K3,K5", "K5,P2,K5,P2", "P2,K4"])
def test_temporal_module_padding_invariance(spec):
    torch.manual_seed(0)
    module = TemporalModule(spec, in_dim=6, hidden_dim=8).eval()
    long, short = torch.randn(1, 13, 6), torch.randn(1, 5, 6)
    batch = torch.zeros(2, 13, 6)
    batch[0], batch[1, :5] = long[0], short[0]
    batch[1, 5:] = 100.0  # garbage in the padding must not leak into the short video
    out, lengths = module(batch, torch.tensor([13, 5]))
    alone_long, len_long = module(long, torch.tensor([13]))
    alone_short, len_short = module(short, torch.tensor([5]))
    assert lengths.tolist() == [len_long.item(), len_short.item()]
    torch.testing.assert_close(out[0, : len_long.item()], alone_long[0])
    torch.testing.assert_close(out[1, : len_short.item()], alone_short[0])
    assert torch.all(out[1, len_short.item():] == 0)


def test_visual_encoder_padding_invariance():
    """A video encodes the same alone as in a padded batch (eval mode)."""
    torch.manual_seed(0)
    enc = SignVisualEncoder("K5", temporal_dim=16).eval()
    a, b = torch.randn(7, 3, 32, 32), torch.randn(3, 3, 32, 32)
    batch = torch.zeros(2, 7, 3, 32, 32)
    batch[0], batch[1, :3] = a, b
    out, lengths = enc(batch, torch.tensor([7, 3]))
    assert out.shape == (2, 7, 16) and lengths.tolist() == [7, 3]
    with torch.no_grad():
        alone_b, _ = enc(b[None], torch.tensor([3]))
        alone_a, _ = enc(a[None], torch.tensor([7]))
    torch.testing.assert_close(out[1, :3], alone_b[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out[0], alone_a[0], rtol=1e-4, atol=1e-5)


def test_backbone_sees_only_real_frames():
    enc = SignVisualEncoder("K5", temporal_dim=8).train()
    seen = []
    enc.backbone.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
    enc(torch.randn(3, 6, 3, 32, 32), torch.tensor([6, 2, 4]))
    assert seen == [12]


def test_masked_batchnorm_uses_valid_steps_only():
    bn = MaskedBatchNorm1d(4, momentum=1.0)  # running stats = last batch's stats
    x = torch.randn(2, 4, 6)
    mask = torch.tensor([[False] * 6, [False] * 2 + [True] * 4])
    x_pad = x.clone()
    x_pad[1, :, 2:] = 1e3
    y = bn(x_pad, mask)
    valid = torch.cat([x[0], x[1, :, :2]], dim=1)  # C x N
    torch.testing.assert_close(bn.running_mean, valid.mean(1))
    torch.testing.assert_close(bn.running_var, valid.var(1, unbiased=True))
    expected = (valid - valid.mean(1, keepdim=True)) / torch.sqrt(valid.var(1, unbiased=False, keepdim=True) + bn.eps)
    torch.testing.assert_close(torch.cat([y[0], y[1, :, :2]], 1), expected * bn.weight[:, None] + bn.bias[:, None])
    assert torch.all(y[1, :, 2:] == 0)


def test_resnet_weights_from_local_file(tmp_path):
    ref = build_resnet18(None)
    path = tmp_path / "resnet18.pth"
    full = {k: v for k, v in ref.state_dict().items()}
    full["fc.weight"], full["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)
    torch.save(full, path)
    net = build_resnet18(str(path))
    torch.testing.assert_close(net.conv1.weight, ref.conv1.weight)
    with pytest.raises(FileNotFoundError, match="ResNet-18 weights not found"):
        build_resnet18(str(tmp_path / "missing.pth"))


def test_gradients_are_contiguous_for_fairseq_flattening():
    """Channels-last input must not leak into the weights' gradient layout: fairseq's fp16
    optimizer and legacy DDP flatten gradients with ``.view(-1)``."""
    from fairseq_slt.models.visual_frontend import SignVisualEncoder

    enc = SignVisualEncoder("K3", 8)
    feats, _ = enc(torch.randn(2, 4, 3, 32, 32), torch.tensor([4, 3]))
    feats.sum().backward()
    assert all(p.grad.is_contiguous() for p in enc.parameters() if p.grad is not None)


def test_fused_batchnorm_matches_eval_backbone():
    from fairseq_slt.models.visual_frontend import build_resnet18, fuse_batchnorm

    torch.manual_seed(0)
    net = build_resnet18()
    net.train()
    net(torch.randn(4, 3, 32, 32))  # move the BatchNorm statistics away from their init
    net.eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        ref = net(x)
        fused = fuse_batchnorm(net)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
        torch.testing.assert_close(fused(x), ref, rtol=1e-4, atol=1e-5)


def test_temporal_spec_and_lengths():
    assert parse_temporal_spec("K5, P2") == [("K", 5), ("P", 2)]
    for bad in ("", "K", "C3", "K0", "K5;P2"):
        with pytest.raises(ValueError):
            parse_temporal_spec(bad)
    lengths = torch.tensor([10, 7, 1])
    assert tconv_out_lengths(lengths, "K5").tolist() == [10, 7, 1]
    assert tconv_out_lengths(lengths, "K4").tolist() == [9, 6, 1]  # even kernel loses one step
    assert tconv_out_lengths(lengths, "P2").tolist() == [5, 3, 1]
    assert tconv_out_lengths(lengths, "K5,P2,K5,P2").tolist() == [2, 1, 1]


def test_lengths_to_padding_mask():
    mask = lengths_to_padding_mask(torch.tensor([3, 1]), 4)
    assert mask.tolist() == [[False, False, False, True], [False, True, True, True]]


def hub_weights(torch_home, seed=0):
    """A ResNet-18 state dict where torchvision's weights API caches IMAGENET1K_V1."""
    import torchvision

    torch.manual_seed(seed)
    state = torchvision.models.resnet18(weights=None).state_dict()
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    path = torch_home / "hub" / "checkpoints" / os.path.basename(url)
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    return state


def test_resnet_imagenet_from_the_torch_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    state = hub_weights(tmp_path)
    net = build_resnet18("imagenet")
    torch.testing.assert_close(net.conv1.weight, state["conv1.weight"])
    torch.testing.assert_close(net.layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"])
    assert not torch.equal(build_resnet18("none").conv1.weight, state["conv1.weight"])  # explicit random


def test_resnet_imagenet_offline_names_the_file_and_where_to_put_it(tmp_path, monkeypatch):
    import urllib.error

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    where = os.path.join(str(tmp_path), "hub", "checkpoints", "resnet18-f37072fd.pth")
    with pytest.raises(FileNotFoundError, match=rf"not in {re.escape(where)} and could not be downloaded .*copy resnet18-f37072fd\.pth from https://"):
        build_resnet18("imagenet")


def test_restoring_a_checkpoint_initialises_nothing(tmp_path):
    """Decoding and resuming rebuild the model before loading its weights: the ImageNet file or
    path given at training time need not exist there."""
    encoder = SignVisualEncoder("K3", 8, str(tmp_path / "moved_away.pth"), from_checkpoint=True)
    assert encoder.out_dim == 8
    with pytest.raises(FileNotFoundError, match="ResNet-18 weights not found"):
        SignVisualEncoder("K3", 8, str(tmp_path / "moved_away.pth"))


@pytest.mark.slow
def test_fairseq_train_with_imagenet_then_generate_without_the_weights(tiny_corpus, tmp_path):
    import subprocess

    from helpers import BIN_DIR, PLUGIN_DIR, stage1_train_cmd

    from fairseq_slt.checkpoints import load_checkpoint_state

    state = hub_weights(tmp_path / "torch_home", seed=3)
    env = dict(os.environ, TORCH_HOME=str(tmp_path / "torch_home"))
    cmd = stage1_train_cmd(tiny_corpus, tmp_path / "ckpt", 1) + ["--resnet-pretrained", "imagenet"]
    proc = subprocess.run([os.path.join(BIN_DIR, cmd[0])] + [str(c) for c in cmd[1:]],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trained = load_checkpoint_state(str(tmp_path / "ckpt" / "checkpoint_last.pt"))["model"]
    # one Adam update (lr 1e-3) away from the cached ImageNet weights: they were loaded
    start = state["layer4.1.conv2.weight"]
    assert (trained["encoder.visual.backbone.layer4.1.conv2.weight"] - start).abs().max() < 0.01
    import shutil

    shutil.rmtree(tmp_path / "torch_home")  # decoding needs no ImageNet file and no network
    gen = subprocess.run([os.path.join(BIN_DIR, "fairseq-generate"), str(tiny_corpus), "--user-dir", PLUGIN_DIR,
                          "--task", "sign_translation", "--gen-subset", "test", "--path",
                          str(tmp_path / "ckpt" / "checkpoint_last.pt"), "--beam", "2", "--max-len-b", "5"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert gen.returncode == 0, gen.stderr[-3000:]
    assert len(re.findall(r"^H-\d+\t", gen.stdout, re.M)) == 5
