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
