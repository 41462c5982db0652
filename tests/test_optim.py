import pytest
import torch
from omegaconf import OmegaConf

from fairseq_slt.optim.adam_grouped import AdamGroupedConfig, FairseqAdamGrouped


def make(scales, params):
    cfg = OmegaConf.structured(AdamGroupedConfig(lr=[1e-3], group_lr_scales=scales, tpu=False))
    return FairseqAdamGrouped(cfg, params)


def test_group_learning_rates_follow_the_scheduler():
    adapter = torch.nn.Parameter(torch.zeros(4))
    llm = torch.nn.Parameter(torch.zeros(4))
    llm.param_group = "llm"
    opt = make("llm:0.01", [adapter, llm])
    lrs = {g["group_name"]: g["lr"] for g in opt.param_groups}
    assert lrs == pytest.approx({"default": 1e-3, "llm": 1e-5})
    opt.set_lr(5e-4)  # what an lr scheduler does
    assert opt.get_lr() == pytest.approx(5e-4)
    assert {g["group_name"]: g["lr"] for g in opt.param_groups} == pytest.approx({"default": 5e-4, "llm": 5e-6})
    adapter.grad, llm.grad = torch.ones(4), torch.ones(4)
    opt.step()
    # Adam's first step moves each weight by its lr
    torch.testing.assert_close(adapter.detach(), torch.full((4,), -5e-4), rtol=1e-3, atol=0)
    torch.testing.assert_close(llm.detach(), torch.full((4,), -5e-6), rtol=1e-3, atol=0)


def test_unknown_group_is_an_error():
    with pytest.raises(ValueError, match=r"names groups \['mbart'\] that no trainable parameter has"):
        make("mbart:0.01", [torch.nn.Parameter(torch.zeros(2))])
    with pytest.raises(ValueError, match="expected group:scale"):
        make("llm0.01", [torch.nn.Parameter(torch.zeros(2))])


def test_torch_and_fairseq_adam_agree():
    """--adam-impl torch (fused, the default) takes the same steps as fairseq's Python Adam."""
    torch.manual_seed(0)
    init = [torch.randn(5, 3), torch.randn(7)]
    runs = {}
    for impl in ("torch", "fairseq"):
        params = [torch.nn.Parameter(t.clone()) for t in init]
        params[1].param_group = "llm"
        cfg = OmegaConf.structured(AdamGroupedConfig(lr=[1e-2], group_lr_scales="llm:0.1", tpu=False,
                                                     adam_impl=impl, weight_decay=0.01))
        opt = FairseqAdamGrouped(cfg, params)
        assert opt.supports_memory_efficient_fp16 == (impl == "fairseq")
        g = torch.Generator().manual_seed(1)
        for _ in range(5):
            for p in params:
                p.grad = torch.randn(p.shape, generator=g)
            opt.step()
        runs[impl] = (params, opt)
    assert runs["torch"][1].optimizer.defaults.get("fused") is True
    for a, b in zip(runs["torch"][0], runs["fairseq"][0]):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-5, atol=1e-6)
    # the optimizer state round-trips through a checkpoint's state dict
    state = runs["torch"][1].state_dict()
    runs["torch"][1].load_state_dict(state)
