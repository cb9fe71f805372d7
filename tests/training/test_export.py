import json
import warnings
from argparse import Namespace

import pytest
import torch

from bounds import CERTIFICATE_METHODS, Bounded
from bounds.ibp import ConvBlock, Flatten, LinearBlock
from service.artifacts import load_module, read_manifest
from training import export
from training.artifacts import sha256
from training.jit import freeze, load, quiet_jit
from training.models import AutoencoderConfig, ConvAutoencoder, VGG16, VGGConfig, count_parameters
from training.runs import save_checkpoint

from .conftest import ARTIFACTS, DATA_ROOT


def test_round_trip_of_a_stochastic_model(tmp_path):
    ae = ConvAutoencoder(AutoencoderConfig(latent_dim=4)).eval()
    path = tmp_path / "ae.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # quiet_jit silences torch.jit's deprecation notes
        with quiet_jit():
            torch.jit.save(freeze(ae), str(path))
        assert export.check_round_trip(ae, path) < 1e-5
        x = torch.rand(2, 1, 32, 32)
        loaded = load(path)
    with torch.no_grad():
        assert not torch.allclose(loaded(x), loaded(x))  # the latent noise survives freezing


def test_round_trip_catches_a_different_model(tmp_path):
    path = tmp_path / "vgg.pt"
    with quiet_jit():
        torch.jit.save(freeze(VGG16(VGGConfig(width=0.125))), str(path))
    with pytest.raises(RuntimeError, match="differs from the eager model"):
        export.check_round_trip(VGG16(VGGConfig(width=0.125)), path)


def test_a_certifiable_export_stores_each_weight_once_and_builds_the_rest_when_it_loads(tmp_path):
    torch.manual_seed(0)
    net = Bounded([ConvBlock(1, 4), ConvBlock(4, 8, stride=2), Flatten(), LinearBlock(8 * 16 * 16, 256)],
                  torch.nn.Linear(256, 10)).eval()
    path = tmp_path / "certified.pt"
    with quiet_jit():
        torch.jit.save(freeze(net), str(path))
    assert path.stat().st_size <= 4.4 * count_parameters(net)  # no |W|, no second layout of the dense layer
    assert export.check_round_trip(net, path) < 1e-5  # bounds included, from the layouts built at load
    x, eps = torch.rand(4, 1, 32, 32), torch.full((4,), 0.01)
    served = load_module(path.read_bytes(), path, torch.device("cpu"), True, CERTIFICATE_METHODS)
    with torch.no_grad():
        assert torch.allclose(served.bounds(x, eps, None)[1], net.bounds(x, eps, None)[1], atol=1e-5)


def test_export_writes_a_self_describing_manifest(tmp_path):
    run = tmp_path / "runs" / "mnist"
    run.mkdir(parents=True)
    save_checkpoint(run / "classifier.ckpt", "vgg16", VGGConfig(width=0.125), VGG16(VGGConfig(width=0.125)))
    for name in ("autoencoder", "autoencoder-fgsm", "autoencoder-pgd"):
        save_checkpoint(run / f"{name}.ckpt", "autoencoder", AutoencoderConfig(), ConvAutoencoder())
    export.main(Namespace(dataset="mnist", root=DATA_ROOT, workdir=tmp_path / "runs",
                          artifacts=tmp_path / "art", limit=200))
    folder = tmp_path / "art" / "mnist"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["input_shape"] == [1, 32, 32]
    assert manifest["preprocessing"]["resize"] == "bilinear"
    assert set(manifest["models"]) == set(export.CHECKPOINTS)
    assert manifest["models"]["classifier"]["config"]["width"] == 0.125
    assert manifest["models"]["autoencoder"]["detector"]["reconstruction_mse_threshold"] > 0
    for name, entry in manifest["files"].items():
        assert sha256(folder / name) == entry["sha256"]
        assert (folder / name).stat().st_size == entry["size"]
    assert len(manifest["samples"]) == export.SAMPLES
    assert manifest["default_pipeline"] == "autoencoder"
    assert manifest["pipelines"]["autoencoder-pgd"] == {"purifier": "autoencoder-pgd.pt", "classifier": "classifier.pt",
                                                        "metrics": {}}

    # a robust classifier and the pipelines that use it join the folder; the rest stays as it was
    save_checkpoint(run / "robust.ckpt", "vgg16", VGGConfig(width=0.125), VGG16(VGGConfig(width=0.125)))
    save_checkpoint(run / "robust-purifier.ckpt", "autoencoder", AutoencoderConfig(latent_dim=32),
                    ConvAutoencoder(AutoencoderConfig(latent_dim=32)))
    before = {name: entry for name, entry in manifest["files"].items()}
    export.main(Namespace(dataset="mnist", root=DATA_ROOT, workdir=tmp_path / "runs", artifacts=tmp_path / "art",
                          add=["adv=robust.ckpt", "joint-ae=robust-purifier.ckpt"],
                          pipeline=["adv=adv.pt", "autoencoder+adv=autoencoder.pt+adv.pt", "joint=joint-ae.pt+adv.pt"],
                          default_pipeline="adv"))
    extended = json.loads((folder / "manifest.json").read_text())
    assert extended["models"]["adv"]["kind"] == "classifier" and extended["default_pipeline"] == "adv"
    assert extended["models"]["joint-ae"]["kind"] == "purifier"  # a purifier checkpoint is added as one
    assert extended["pipelines"]["adv"] == {"purifier": None, "classifier": "adv.pt", "metrics": {}}
    assert extended["pipelines"]["autoencoder+adv"]["purifier"] == "autoencoder.pt"
    assert {k: v for k, v in extended["files"].items() if k not in ("adv.pt", "joint-ae.pt")} == before
    assert extended["files"]["adv.pt"]["sha256"] == sha256(folder / "adv.pt")
    assert extended["models"]["autoencoder"] == manifest["models"]["autoencoder"]
    served = read_manifest(folder)  # the service accepts it, and serves both pipelines
    assert {"adv", "autoencoder+adv", "autoencoder", "joint"} <= set(served.pipelines)
    assert served.pipeline_models("joint") == ("joint-ae", "adv")

    # retiring pipelines: a classifier none uses any more leaves with its file; purifiers stay for /purify
    export.main(Namespace(dataset="mnist", root=DATA_ROOT, workdir=tmp_path / "runs", artifacts=tmp_path / "art",
                          retire=["autoencoder", "autoencoder+adv"]))
    retired = json.loads((folder / "manifest.json").read_text())
    assert set(retired["pipelines"]) == {"adv", "joint", "autoencoder-fgsm", "autoencoder-pgd"}
    assert "autoencoder" in retired["models"] and (folder / "autoencoder.pt").is_file()
    export.main(Namespace(dataset="mnist", root=DATA_ROOT, workdir=tmp_path / "runs", artifacts=tmp_path / "art",
                          default_pipeline="joint", retire=["adv"]))
    assert "adv" in json.loads((folder / "manifest.json").read_text())["models"]  # the joint pipeline uses it
    export.main(Namespace(dataset="mnist", root=DATA_ROOT, workdir=tmp_path / "runs", artifacts=tmp_path / "art",
                          default_pipeline="autoencoder-pgd", retire=["joint"]))
    final = json.loads((folder / "manifest.json").read_text())
    assert "adv" not in final["models"] and not (folder / "adv.pt").exists() and "adv.pt" not in final["files"]
    assert "autoencoder" in read_manifest(folder).compositions  # ?purifier=autoencoder still composes it
    with pytest.raises(ValueError, match="it is the default pipeline"):
        export.main(Namespace(dataset="mnist", root=DATA_ROOT, workdir=tmp_path / "runs",
                              artifacts=tmp_path / "art", retire=["autoencoder-pgd"]))


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_every_committed_pipeline_names_model_files_whose_sha256_match(dataset):
    folder = ARTIFACTS / dataset
    manifest = json.loads((folder / "manifest.json").read_text())
    for name, pipeline in manifest.get("pipelines", {}).items():
        for file in (pipeline["purifier"], pipeline["classifier"]):
            if file is not None:
                assert file in {m["file"] for m in manifest["models"].values()}, (name, file)
                assert sha256(folder / file) == manifest["files"][file]["sha256"], (name, file)


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_committed_manifest_matches_its_files(dataset):
    folder = ARTIFACTS / dataset
    manifest = json.loads((folder / "manifest.json").read_text())
    on_disk = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json"}
    assert on_disk == set(manifest["files"])
    for name, entry in manifest["files"].items():
        assert sha256(folder / name) == entry["sha256"], name
    assert manifest["metrics"]["table"], "evaluate has not been run on the committed artifacts"


def test_the_measured_default_is_the_best_worst_case_that_clears_the_clean_floor() -> None:
    from training.export import measured_default

    def pipeline(clean, worst):
        return {"metrics": {"clean": {"accuracy": clean}, **({"worst_case": {"accuracy": worst}} if worst else {})}}

    manifest = {"dataset": "mnist", "pipelines": {
        "robust-but-inaccurate": pipeline(0.97, 0.95), "certified": pipeline(0.986, 0.93),
        "adversarial": pipeline(0.992, 0.82), "unmeasured": pipeline(0.999, None), "plain": {"metrics": {}}}}
    assert measured_default(manifest) == "certified"
    manifest["pipelines"]["certified"] = pipeline(0.984, 0.93)  # below MNIST's 0.985 floor
    assert measured_default(manifest) == "adversarial"
    with pytest.raises(ValueError, match="no pipeline of fashion-mnist"):
        measured_default({"dataset": "fashion-mnist", "pipelines": {"a": pipeline(0.80, 0.7)}})
