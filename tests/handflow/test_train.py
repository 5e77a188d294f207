"""Training: runs, logs, checkpoints, resumes bit-for-bit, and keeps DDP ranks in sync."""

from __future__ import annotations

import csv
import os
import socket

import pytest
import torch
from processes import join_all

from handflow.checkpoint import load_checkpoint
from handflow.errors import HandflowError
from handflow.train import load_train_config, train


def _log(path):
    """Log rows without the timing column (wall-clock speed differs run to run)."""
    with open(path) as f:
        return [{k: v for k, v in r.items() if k != "train_images_per_s"} for r in csv.DictReader(f)]


def test_train_writes_checkpoint_and_log(tmp_path, tiny_train_config):
    cfg = load_train_config(tiny_train_config)
    row = train(cfg, tmp_path)
    rows = _log(tmp_path / "log.csv")
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert float(rows[-1]["val_mpjpe_global_mm"]) > 0 and float(rows[-1]["val_sample_std_mm"]) > 0
    payload = load_checkpoint(tmp_path / "last.pt")
    assert payload["epoch"] == 2 and payload["config"]["model"]["backbone_width"] == 8
    assert row["epoch"] == 2
    # a second run into the same folder must not overwrite it
    with pytest.raises(HandflowError, match="--resume"):
        train(cfg, tmp_path)


@pytest.mark.parametrize("crop_shift", [0.0, 0.1])
def test_resume_reproduces_uninterrupted_run(tmp_path, tiny_train_config, monkeypatch, crop_shift):
    """Also with training's crop shifts: their draw is fixed by the seed and the step, not by the process."""
    cfg = load_train_config(tiny_train_config)
    cfg.data.crop_shift = crop_shift
    full = tmp_path / "full"
    train(cfg, full)

    import handflow.train as T

    real = T._append_log
    calls = {"n": 0}

    def crash_after_first_epoch(path, row):
        real(path, row)
        calls["n"] += 1
        raise KeyboardInterrupt  # killed right after epoch 1 was checkpointed

    part = tmp_path / "part"
    monkeypatch.setattr(T, "_append_log", crash_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, part)
    monkeypatch.setattr(T, "_append_log", real)
    train(cfg, part, resume=True)
    assert _log(part / "log.csv") == _log(full / "log.csv")
    a = load_checkpoint(full / "last.pt")["state_dict"]
    b = load_checkpoint(part / "last.pt")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_without_checkpoint_is_an_error(tmp_path, tiny_train_config):
    with pytest.raises(HandflowError, match="nothing to resume"):
        train(load_train_config(tiny_train_config), tmp_path, resume=True)


def test_unknown_config_key_is_an_error(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[optim]\nlearning_rate = 0.1\n")
    with pytest.raises(HandflowError, match="unknown key 'learning_rate'"):
        load_train_config(p)
    p.write_text("[optim]\nlr = 'fast'\n")
    with pytest.raises(HandflowError, match="optim.lr"):
        load_train_config(p)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, config_path, out, results):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    row = train(load_train_config(config_path), out)
    results[rank] = row["param_digest"]


def test_ddp_two_gloo_processes_keep_parameters_identical(tmp_path, tiny_train_config):
    ctx = torch.multiprocessing.get_context("spawn")
    manager = ctx.Manager()
    results = manager.dict()
    port = _free_port()
    procs = [ctx.Process(target=_ddp_worker, args=(r, 2, port, str(tiny_train_config), str(tmp_path), results))
             for r in range(2)]
    for p in procs:
        p.start()
    assert join_all(procs) == [0, 0]
    assert results[0] == results[1]
    assert (tmp_path / "last.pt").is_file()


def test_training_split_from_a_larger_synthetic_capture(tmp_path, tiny_train_config, tiny_data_root, monkeypatch):
    """``[data.synth]``: the training split comes from a capture generated with those sizes, validation from
    the embedded default's (both stand-ins here: the tiny capture and a second, smaller one)."""
    import handflow.synth.capture as synth

    big_cfg = synth.SynthConfig(**{**synth.to_dict(_tiny_synth(tiny_data_root)), "train_frames": 5, "seed": 5})
    big = synth.synthesize(big_cfg, tmp_path / "big")
    calls = []

    def fake_ensure(cfg=None):
        calls.append(cfg)
        return tiny_data_root if cfg is None else big

    monkeypatch.setattr(synth, "ensure_default_data", fake_ensure)
    text = tiny_train_config.read_text()
    text = "\n".join(l for l in text.splitlines() if not l.startswith("root = "))  # the embedded default
    tiny = synth.to_dict(big_cfg)
    text += "\n[data.synth]\n" + "".join(f"{k} = {v!r}\n" for k, v in tiny.items() if v is not None)
    p = tmp_path / "cfg.toml"
    p.write_text(text)
    cfg = load_train_config(p)
    cfg.optim.epochs = 1
    assert cfg.data.synth.train_frames == 5 and cfg.data.synth.seed == 5
    train(cfg, tmp_path / "run")
    assert calls[0] is None and calls[1] == big_cfg  # default root (validation), then the training capture
    from handflow.preload import open_split
    from handflow.hand.model import HandModel
    from handflow.synth.mano import default_mano_dir

    n_big = len(open_split(big, "train", cfg.model.crop_px, HandModel.from_dir(default_mano_dir())))
    n_tiny = len(open_split(tiny_data_root, "train", cfg.model.crop_px, HandModel.from_dir(default_mano_dir())))
    assert n_big != n_tiny
    payload = load_checkpoint(tmp_path / "run" / "last.pt")
    assert payload["config"]["data"]["synth"]["train_frames"] == 5
    steps = int(_log(tmp_path / "run" / "log.csv")[-1]["step"])
    assert steps == n_big // cfg.optim.batch_size  # one epoch of the larger capture's training split


def _tiny_synth(root):
    import json

    from handflow.synth.capture import SynthConfig

    return SynthConfig(**json.loads((root / "viewselect_synth.json").read_text())["config"])


def test_frozen_encoder_stage_keeps_encoder_and_starting_flow(tmp_path, tiny_train_config, tiny_model):
    """``train_encoder = false`` after ``init_from`` (whole model): the encoder's weights and BatchNorm
    statistics end exactly as loaded, the flow starts from the loaded flow (same y scale, no ActNorm
    re-initialisation) and trains; it resumes like any run."""
    text = tiny_train_config.read_text().replace(
        "seed = 0", f"seed = 0\ninit_from = {str(tiny_model)!r}\ninit_encoder_only = false\ntrain_encoder = false")
    path = tmp_path / "stage.toml"
    path.write_text(text)
    cfg = load_train_config(path)
    train(cfg, tmp_path / "run")
    start = load_checkpoint(tiny_model)["state_dict"]
    end = load_checkpoint(tmp_path / "run" / "last.pt")["state_dict"]
    enc = [k for k in start if k.startswith("encoder.")]
    assert enc and all(torch.equal(start[k].float(), end[k].float()) for k in enc)
    assert torch.equal(start["y_mean"].float(), end["y_mean"].float())
    flow = [k for k in start if k.startswith("flow.")]
    assert any(not torch.equal(start[k].float(), end[k].float()) for k in flow)


def test_amp_cpu_applies_only_where_the_cpu_has_bfloat16_instructions(monkeypatch, tmp_path, tiny_train_config):
    """Emulated bfloat16 trains the encoder 12-20x slower than float32: without AVX512-BF16 / AMX, ``amp_cpu``
    is ignored (the run says so and records the dtype it used); with them it applies; CUDA follows ``amp``."""
    import json

    import handflow.train as T

    path = tmp_path / "amp.toml"
    path.write_text(tiny_train_config.read_text().replace("seed = 0", "seed = 0\namp_cpu = true", 1))
    cfg = load_train_config(path)
    assert cfg.amp_cpu
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(T, "cpu_bf16_native", lambda: True)
    assert T.encoder_bf16(cfg, cpu) and T.precision_note(cfg, "cpu") is None
    monkeypatch.setattr(T, "cpu_bf16_native", lambda: False)
    assert not T.encoder_bf16(cfg, cpu)
    assert "amp_cpu = true is ignored" in T.precision_note(cfg, "cpu")
    assert T.encoder_bf16(cfg, cuda) == cfg.amp and T.precision_note(load_train_config(tiny_train_config), "cpu") is None
    flags = set()
    real = T._encode

    def recording(model, images, bf16):
        flags.add(bf16)
        return real(model, images, bf16)

    monkeypatch.setattr(T, "_encode", recording)
    train(cfg, tmp_path / "run", device="cpu")
    assert flags == {False}
    assert json.loads((tmp_path / "run" / "config.json").read_text())["encoder_dtype"] == "float32"


def test_crop_shift_is_checked(tmp_path, tiny_train_config):
    text = tiny_train_config.read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("[data]", "[data]\ncrop_shift = 0.5"))
    with pytest.raises(HandflowError, match=r"bad.toml: data.crop_shift must be in \[0, 0.5\)"):  # the file named
        load_train_config(bad)
    bad.write_text(text.replace("[data]", "[data]\ncrop_shift = 0.1").replace(
        "seed = 0", "seed = 0\ntrain_encoder = false\ninit_from = 'x.pt'"))
    with pytest.raises(HandflowError, match="crop_shift needs train_encoder = true"):
        load_train_config(bad)


def test_crop_shift_changes_what_the_encoder_sees(tmp_path, tiny_train_config, monkeypatch):
    """The training step gets shifted crops (black edges, moved principal points) and the matching targets."""
    import handflow.train as T

    seen = []
    real = T._TrainStep.forward

    def spy(self, inputs, targets):
        seen.append((inputs.detach().clone(), targets.K_crop.clone()))
        return real(self, inputs, targets)

    monkeypatch.setattr(T._TrainStep, "forward", spy)
    cfg = load_train_config(tiny_train_config)
    cfg.optim.epochs = 1
    runs = {}
    for shift in (0.0, 0.1):
        seen.clear()
        cfg.data.crop_shift = shift
        train(cfg, tmp_path / f"shift-{shift}")
        runs[shift] = list(seen)
    (i0, K0), (i1, K1) = runs[0.0][0], runs[0.1][0]
    S = i0.shape[-1]
    moved = K1[:, :2, 2] - K0[:, :2, 2]
    assert bool((moved.abs() <= 0.1 * S + 1e-4).all()) and float(moved.abs().max()) > 0.01 * S
    assert not torch.equal(i0, i1)
    assert torch.equal(K1[:, :2, :2], K0[:, :2, :2])


def test_frozen_encoder_needs_init_from(tmp_path, tiny_train_config):
    path = tmp_path / "bad.toml"
    path.write_text(tiny_train_config.read_text().replace("seed = 0", "seed = 0\ntrain_encoder = false"))
    with pytest.raises(HandflowError, match="train_encoder = false needs init_from"):
        load_train_config(path)


def test_frozen_encoder_runs_once_over_the_split(tmp_path, tiny_train_config, tiny_model, monkeypatch):
    """``train_encoder = false`` with fresh heads (``init_encoder_only = true``, the evaluation protocol): the
    encoder runs once per training image before the first step, never in a step; the features it stored are
    the loaded encoder's in eval mode; its weights and BatchNorm statistics end exactly as loaded (the heads'
    data-dependent initialisation no longer runs it in train mode)."""
    import handflow.train as T
    from handflow.data.features import open_features
    from handflow.hand.model import HandModel
    from handflow.model.registry import is_encoder_key, load_model
    from handflow.preload import open_split
    from handflow.synth.mano import default_mano_dir

    text = tiny_train_config.read_text().replace(
        "seed = 0", f"seed = 0\ninit_from = {str(tiny_model)!r}\ninit_encoder_only = true\ntrain_encoder = false")
    path = tmp_path / "frozen.toml"
    path.write_text(text)
    cfg = load_train_config(path)
    # an empty cache of its own: another test's run on the same encoder would have left the store behind
    monkeypatch.setenv("VIEWSELECT_CACHE", str(tmp_path / "cache"))
    encoded = {"images": 0}
    real = T._encode

    def counting(model, images, bf16):
        encoded["images"] += len(images)
        return real(model, images, bf16)

    monkeypatch.setattr(T, "_encode", counting)
    train(cfg, tmp_path / "run")
    hm = HandModel.from_dir(default_mano_dir())
    store = open_split(cfg.data.root, "train", cfg.model.crop_px, hm)
    assert encoded["images"] == len(store)  # once per image, whatever the epochs
    start = load_checkpoint(tiny_model)["state_dict"]
    end = load_checkpoint(tmp_path / "run" / "last.pt")["state_dict"]
    enc = [k for k in start if is_encoder_key(k)]  # the image normalisation too, as the checkpoint stores it
    assert any("running_mean" in k for k in enc) and "img_mean" in enc
    assert all(torch.equal(start[k].float(), end[k].float()) for k in enc)
    model, _ = load_model(tiny_model, hm)
    monkeypatch.setattr(T, "_encode", lambda *a: pytest.fail("the run's feature store is not found by its key"))
    cpu = torch.device("cpu")
    feats = T._frozen_features(model, store, T.encoder_bf16(cfg, cpu), cpu)  # this encoder's store: the run's
    model.encoder.eval()
    with torch.no_grad():
        expect = real(model, store.rows(torch.arange(4), ("image",))["image"].float() / 255, False)
    torch.testing.assert_close(feats.rows(torch.arange(4))["ctx"], expect, rtol=1e-4, atol=1e-4)
