"""The deployment files, checked with Ray's own schemas: the Serve config (`serve deploy`), the
RayService that embeds it, and the cluster launcher's config (`ray up`)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config
from ray.serve.schema import ServeApplicationSchema, ServeDeploySchema

ROOT = Path(__file__).resolve().parents[2]


def load(path: str) -> Any:
    return yaml.safe_load((ROOT / path).read_text())


def test_serve_config_is_a_valid_serve_deploy_config() -> None:
    config = ServeDeploySchema.model_validate(load("deploy/serve.yaml"))
    [app] = config.applications
    assert isinstance(app, ServeApplicationSchema)
    assert app.import_path == "forma3d.serving:app_builder"
    [api] = app.deployments
    assert api.name == "forma3d-api"  # the deployment the code declares
    assert api.autoscaling_config and api.autoscaling_config["min_replicas"] >= 2


def test_serve_config_import_path_names_the_builder() -> None:
    from forma3d import serving

    module, _, name = load("deploy/serve.yaml")["applications"][0]["import_path"].partition(":")
    assert module == serving.__name__ and callable(getattr(serving, name))


def test_serve_config_refuses_a_broken_config() -> None:
    broken = load("deploy/serve.yaml")
    broken["applications"][0]["deployments"][0]["max_ongoing_requests"] = "many"
    with pytest.raises(ValueError):
        ServeDeploySchema.model_validate(broken)


def test_rayservice_embeds_the_same_serve_config() -> None:
    service = load("deploy/kuberay/rayservice.yaml")
    assert service["apiVersion"] == "ray.io/v1" and service["kind"] == "RayService"
    embedded = yaml.safe_load(service["spec"]["serveConfigV2"])
    assert embedded == load("deploy/serve.yaml")
    ServeDeploySchema.model_validate(embedded)


def test_rayservice_cluster_has_fault_tolerance_autoscaling_and_sized_groups() -> None:
    cluster = load("deploy/kuberay/rayservice.yaml")["spec"]["rayClusterConfig"]
    assert cluster["enableInTreeAutoscaling"] is True
    assert cluster["gcsFaultToleranceOptions"]["redisAddress"]
    groups = {g["groupName"]: g for g in cluster["workerGroupSpecs"]}
    assert set(groups) == {"entities", "slicers"}
    for group in groups.values():
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        [container] = group["template"]["spec"]["containers"]
        assert container["resources"]["limits"]["cpu"] == group["rayStartParams"]["num-cpus"]
        assert {e["name"] for e in container["env"]} >= {"DATABASE_URL", "REDIS_URL",
                                                         "FORMA3D_SECRET_KEY"}
    assert groups["slicers"]["minReplicas"] == 0  # slicer nodes only while plates wait
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"


def test_cluster_yaml_passes_rays_cluster_config_validation() -> None:
    raw = load("cluster.yaml")
    prepared = prepare_config(copy.deepcopy(raw))
    validate_config(prepared)
    assert prepared["max_workers"] == raw["max_workers"] == len(raw["provider"]["worker_ips"])


def test_cluster_config_validation_refuses_an_unknown_field() -> None:
    raw = load("cluster.yaml")
    raw["no_such_field"] = 1
    with pytest.raises(Exception, match="no_such_field"):
        validate_config(prepare_config(raw))
