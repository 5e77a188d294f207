"""benchmarks/bench_samples.py: the bfloat16 flow swap is temporary and stays close to float32."""

from __future__ import annotations

import torch


def test_bf16_flow_is_close_and_restored(tiny_model):
    from benchmarks.bench_samples import bf16_flow
    from handflow.hand.model import HandModel
    from handflow.synth.mano import default_mano_dir
    from handflow.model.pose_params import Y_DIM
    from handflow.model.registry import load_model

    model, _ = load_model(tiny_model, HandModel.from_dir(default_mano_dir()), torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, model.cfg.crop_px, model.cfg.crop_px, generator=g)
    z = torch.randn(2, 5, Y_DIM, generator=g)
    with torch.inference_mode():
        ctx = model.encode(images)
        ref = model._fast_inverse(z, ctx, with_logdet=False)[0]
        with bf16_flow(model):
            low = model._fast_inverse(z, ctx, with_logdet=False)[0]
        again = model._fast_inverse(z, ctx, with_logdet=False)[0]
    assert low.dtype == torch.float32 and not torch.equal(low, ref)
    assert (low - ref).abs().max() <= 0.05 * ref.abs().max() + 1e-3  # bfloat16 keeps ~3 significant digits
    torch.testing.assert_close(again, ref, rtol=0, atol=0)  # the float32 path is back
    assert "_fast_inverse" not in model.__dict__
