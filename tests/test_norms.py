"""--log-norms-interval: the gradient the optimizer applies, in fp32 and under fairseq's fp16/bf16."""

import pytest
import torch
import torch.nn as nn
from fairseq import options
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq.optim.fp16_optimizer import FP16Optimizer, MemoryEfficientFP16Optimizer

from fairseq_slt.tasks.norm_logging import applied_grads, last_layers, layer_norms


def training_cfg(*extra):
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, input_args=[
        "data", "--task", "language_modeling", "--arch", "transformer_lm", "--optimizer", "adam",
        "--lr", "1e-3", "--cpu", *extra,
    ])
    return convert_namespace_to_omegaconf(args)


@pytest.mark.parametrize("optimizer_cls,extra", [
    (FP16Optimizer, []),  # flat fp32 master copy
    (FP16Optimizer, ["--fp16-no-flatten-grads"]),
    (MemoryEfficientFP16Optimizer, ["--memory-efficient-bf16"]),  # loss-scale factor still pending
])
def test_low_precision_grads_are_the_applied_ones(optimizer_cls, extra):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2)).to(torch.bfloat16)
    opt = optimizer_cls.build_optimizer(training_cfg("--bf16", *extra), list(model.parameters()))
    opt.backward(model(torch.randn(5, 4).to(torch.bfloat16)).float().sum())
    expected = [p.grad.float() * 0.5 for p in model[1].parameters()]
    opt.multiply_grads(0.5)  # what fairseq's trainer does before the step: 1 / sample_size
    opt.clip_grad_norm(0)
    got = applied_grads(list(model[1].parameters()), opt)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g.view_as(e), e)


def test_fp32_norms_of_the_last_layers(tmp_path):
    from argparse import Namespace

    from fairseq.data import Dictionary

    from fairseq_slt.models.slt_lightt import SLTLightTModel, base_architecture

    d = Dictionary()
    for w in "a b c".split():
        d.add_symbol(w)
    args = Namespace(arch="slt_lightt", encoder_embed_dim=16, encoder_ffn_embed_dim=32, encoder_layers=1,
                     decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2,
                     temporal_dim=8, temporal_module="K3,P2,K3")
    base_architecture(args)

    class Task:
        target_dictionary = source_dictionary = d
        building_from_checkpoint = False  # the task interface the models read

    model = SLTLightTModel.build_model(args, Task())
    layers = last_layers(model)
    assert layers["visual"] is model.encoder.visual.temporal.layers[2]  # the last conv block
    assert layers["llm"] is model.decoder.layers[1]
    logits, _ = model(torch.randn(2, 8, 3, 32, 32), torch.tensor([8, 6]), torch.tensor([[2, 4], [2, 5]]))
    logits.sum().backward()
    gnorm, pnorm = layer_norms(layers["llm"], optimizer=object())
    params = list(layers["llm"].parameters())
    assert gnorm == pytest.approx(float(torch.cat([p.grad.flatten() for p in params]).norm()), rel=1e-5)
    assert pnorm == pytest.approx(float(torch.cat([p.detach().flatten() for p in params]).norm()), rel=1e-5)
