"""deploy/: the files no CI here can run (no Docker engine, no cluster), checked offline.

- compose.yaml against the Compose Specification schema that `check-jsonschema` bundles
  (`--builtin-schema vendor.compose-spec`);
- every Kubernetes manifest against the Kubernetes OpenAPI schemas that
  `kubernetes-validate` bundles, in strict mode (unknown fields are errors);
- and what no schema knows: the Dockerfile installs and runs coord the way the tests do,
  every COORD_* variable is one coord reads, probes and health checks ask /healthz and
  /readyz, the federation commands parse with coord's own CLI parser.

No test here touches the network: a fixture makes every socket connection fail.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import shlex
import socket
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from check_jsonschema import main as check_jsonschema_main
from click.testing import CliRunner

from coord.cli import _parser as coord_parser
from coord.config import Config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
# What `kubectl apply -f deploy/k8s/` applies, and the Secrets kept apart as examples.
K8S_APPLIED = sorted((DEPLOY / "k8s").glob("*.yaml"))
K8S_FILES = K8S_APPLIED + sorted((DEPLOY / "k8s-secrets.example").glob("*.yaml"))

# Being added with federation (issue 7); known even before coord/config.py reads them.
FEDERATION_VARS = frozenset({"COORD_MODE", "COORD_REGIONS"})
MODES = frozenset({"hub", "regional"})
PORT = 8080


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """The linters must work offline: any attempt to connect or resolve fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access during a deploy test: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


# --- helpers ---------------------------------------------------------------------------


def known_variables() -> frozenset[str]:
    """Every COORD_* variable coord's code reads from the environment, plus federation's."""
    read = re.compile(r"""(?:\.get\(|environ\[|getenv\()\s*["'](COORD_[A-Z0-9_]+)["']""")
    found: set[str] = set()
    for package in ("coord", "events", "projections"):
        for path in (ROOT / package).rglob("*.py"):
            found.update(read.findall(path.read_text(encoding="utf-8")))
    # The scan itself must work, or every check below would pass vacuously.
    assert {"COORD_DATABASE_URL", "COORD_NODE_ID", "COORD_SIGNING_KEY"} <= found, found
    return frozenset(found | FEDERATION_VARS)


def interpolate(value: str) -> str:
    """Compose interpolation with every variable unset: `${X:-default}` -> default."""
    value = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}", lambda m: m[1] or "", value)
    return value.replace("$$", "$")


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose()["services"]
    return result


def coord_services() -> dict[str, dict[str, Any]]:
    """The long-running coord nodes (they set a node id)."""
    return {
        name: svc
        for name, svc in services().items()
        if "COORD_NODE_ID" in svc.get("environment", {})
    }


def environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment", {})
    if isinstance(env, list):  # the `- KEY=value` form
        env = dict(item.split("=", 1) for item in env)
    return {k: interpolate(str(v)) for k, v in env.items()}


def manifests() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in K8S_FILES:
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc is not None:
                yield path, doc


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in manifests() if doc["kind"] == kind]


def by_name(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in of_kind(kind)}


class Instruction:
    """One Dockerfile instruction, continuation lines joined."""

    def __init__(self, keyword: str, args: str, stage: int) -> None:
        self.keyword = keyword.upper()
        self.args = args
        self.stage = stage

    def exec_form(self) -> list[str]:
        """The JSON array of an exec-form ENTRYPOINT/CMD (a shell form fails the test)."""
        value = json.loads(self.args)
        assert isinstance(value, list), f"{self.keyword} is not in exec form: {self.args}"
        return [str(v) for v in value]

    def __repr__(self) -> str:
        return f"{self.keyword} {self.args}"


def dockerfile() -> list[Instruction]:
    instructions: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, args.strip(), stage))
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return instructions


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def image_environment() -> dict[str, str]:
    """The ENV of the image's runtime stage (what every container starts with)."""
    env: dict[str, str] = {}
    for i in final_stage(dockerfile()):
        if i.keyword == "ENV":
            for item in shlex.split(i.args):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def parse_coord(argv: list[str]) -> argparse.Namespace:
    """Parse a `coord` command line with coord's own parser (fails on an unknown flag)."""
    try:
        return coord_parser().parse_args(argv)
    except SystemExit as e:
        raise AssertionError(f"coord rejects {shlex.join(argv)!r}") from e


def coord_has_command(name: str) -> bool:
    for action in coord_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return name in action.choices
    return False


def require_federation_cli() -> None:
    if not coord_has_command("federation"):
        pytest.skip("`coord federation` is not in this checkout yet (issue 7)")


# --- compose.yaml ----------------------------------------------------------------------


def run_compose_linter(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        check_jsonschema_main, ["--builtin-schema", "vendor.compose-spec", str(path)]
    )
    return result.exit_code, result.output


def test_compose_file_is_valid_by_the_compose_spec_schema() -> None:
    code, output = run_compose_linter(COMPOSE)
    assert code == 0, output


@pytest.mark.parametrize(
    ("good", "bad"),
    [
        ("condition: service_healthy", "condition: service_healty"),
        ("  restart: unless-stopped", "  restartt: unless-stopped"),  # inside an anchor
        ("    interval: 2s", "    interval: [2s]"),
    ],
)
def test_compose_linter_rejects_a_broken_copy(tmp_path: Path, good: str, bad: str) -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    assert good in text
    broken = tmp_path / "compose.yaml"
    broken.write_text(text.replace(good, bad), encoding="utf-8")
    code, output = run_compose_linter(broken)
    assert code == 1, output
    assert "validation errors" in output


def test_compose_has_a_hub_two_regions_and_a_federation_setup() -> None:
    assert set(services()) == {
        "pg-hub",
        "pg-jatim",
        "pg-jateng",
        "coord-hub",
        "coord-jatim",
        "coord-jateng",
        "federation-setup",
    }
    nodes = {environment(s)["COORD_NODE_ID"]: environment(s) for s in coord_services().values()}
    assert set(nodes) == {"hub", "jatim", "jateng"}
    assert nodes["hub"]["COORD_MODE"] == "hub"
    assert "COORD_REGIONS" not in nodes["hub"]
    assert (nodes["jatim"]["COORD_MODE"], nodes["jatim"]["COORD_REGIONS"]) == ("regional", "35")
    assert (nodes["jateng"]["COORD_MODE"], nodes["jateng"]["COORD_REGIONS"]) == ("regional", "33")


def test_compose_postgres_servers_run_with_logical_replication() -> None:
    declared_volumes = set(compose()["volumes"])
    pg = {name: svc for name, svc in services().items() if name.startswith("pg-")}
    assert len(pg) == 3
    for name, svc in pg.items():
        image, _, tag = svc["image"].partition(":")
        # Row filters and column lists (15) and origin = none (16) in logical replication.
        assert image == "postgres" and int(tag.split(".")[0]) >= 16, (name, svc["image"])
        command = svc["command"]
        assert command[0] == "postgres", name
        settings = dict(command[i + 1].split("=", 1) for i, c in enumerate(command) if c == "-c")
        assert settings["wal_level"] == "logical", name
        assert int(settings["max_replication_slots"]) >= 16, name
        assert int(settings["max_wal_senders"]) >= 16, name
        assert "pg_isready" in svc["healthcheck"]["test"], name
        # postgres:18 images keep PGDATA in /var/lib/postgresql/18/docker and refuse to
        # start with a volume on the old /var/lib/postgresql/data.
        volume, _, target = svc["volumes"][0].partition(":")
        assert target == "/var/lib/postgresql", name
        assert volume in declared_volumes, name


def test_compose_coord_nodes_each_use_their_own_healthy_database() -> None:
    pg = {name for name in services() if name.startswith("pg-")}
    used: set[str] = set()
    for name, svc in coord_services().items():
        env = environment(svc)
        url = urlsplit(env["COORD_DATABASE_URL"])
        assert url.scheme in ("postgresql", "postgres"), name
        assert url.hostname in pg, name
        assert svc["depends_on"][url.hostname] == {"condition": "service_healthy"}, name
        used.add(url.hostname)
        assert env["COORD_HOST"] == "0.0.0.0" and env["COORD_LOG_FORMAT"] == "json", name
        # coord itself accepts the settings (types, enumerations).
        config = Config.from_env(image_environment() | env)
        assert (config.host, config.port, config.node_id) == ("0.0.0.0", PORT, env["COORD_NODE_ID"])
        assert any(p.endswith(f":{PORT}") for p in svc["ports"]), name
    assert used == pg, "every PostgreSQL belongs to exactly one node"


def test_compose_sets_only_variables_coord_reads() -> None:
    known = known_variables()
    seen: set[str] = set()
    for name, svc in services().items():
        if name.startswith("pg-"):
            continue
        coord_env = {k for k in environment(svc) if k.startswith("COORD_")}
        assert coord_env <= known, (name, coord_env - known)
        seen |= coord_env
    assert {"COORD_DATABASE_URL", "COORD_NODE_ID", "COORD_MODE", "COORD_REGIONS"} <= seen


def test_compose_coord_images_come_from_the_dockerfile_and_check_healthz() -> None:
    declared_volumes = set(compose()["volumes"])
    for name, svc in services().items():
        if name.startswith("pg-"):
            continue
        build = svc["build"]
        assert (COMPOSE.parent / build["context"]).resolve() == ROOT, name
        assert (ROOT / build["dockerfile"]).resolve() == DOCKERFILE, name
        for volume in svc.get("volumes", []):
            assert volume.partition(":")[0] in declared_volumes, (name, volume)
    for name, svc in coord_services().items():
        test = " ".join(svc["healthcheck"]["test"])
        assert f"127.0.0.1:{PORT}/healthz" in test, name
        # COORD_HOME (the generated signing key) is kept on a volume.
        assert any(v.endswith(":/var/lib/coord") for v in svc["volumes"]), name


def test_compose_depends_on_names_existing_services() -> None:
    for name, svc in services().items():
        for target in svc.get("depends_on", {}):
            assert target in services(), (name, target)


def federation_setup_commands() -> list[list[str]]:
    svc = services()["federation-setup"]
    assert svc["entrypoint"][0] == "/bin/sh"
    script = interpolate("\n".join(svc["command"]))
    lines = [shlex.split(line) for line in script.splitlines() if line.strip()]
    assert lines and all(line[0] == "coord" for line in lines), lines
    return [line[1:] for line in lines]


def test_compose_federation_setup_waits_for_every_node() -> None:
    svc = services()["federation-setup"]
    assert svc["restart"] == "no"
    assert svc["depends_on"] == {
        name: {"condition": "service_healthy"} for name in coord_services()
    }
    commands = federation_setup_commands()
    adds = [argv for argv in commands if argv[:2] == ["federation", "add-region"]]
    assert len(adds) == len(coord_services()) - 1, commands
    assert all(argv[0] == "federation" for argv in commands), commands


def test_compose_federation_setup_adds_each_region_to_the_hub() -> None:
    require_federation_cli()
    nodes = {environment(s)["COORD_NODE_ID"]: environment(s) for s in coord_services().values()}
    added = {}
    for argv in federation_setup_commands():
        args = parse_coord(argv)
        if args.verb == "status":
            assert args.dsn == nodes["hub"]["COORD_DATABASE_URL"]
            continue
        assert args.verb == "add-region", argv
        assert args.hub_dsn == nodes["hub"]["COORD_DATABASE_URL"]
        added[args.name] = args.region_dsn
    regions = {n: env["COORD_DATABASE_URL"] for n, env in nodes.items() if n != "hub"}
    assert added == regions


# --- Dockerfile --------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_on_the_supported_python() -> None:
    instructions = dockerfile()
    froms = [i.args.split() for i in instructions if i.keyword == "FROM"]
    assert len(froms) >= 2, froms
    assert froms[0][1:] == ["AS", "builder"] or froms[0][1:] == ["as", "builder"], froms[0]
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    minimum = re.fullmatch(r">=\s*(\d+\.\d+)", requires)
    assert minimum, requires
    for image in froms:
        assert image[0] == f"python:{minimum[1]}-slim", image
    runtime = final_stage(instructions)
    assert not any(i.keyword == "RUN" and "pip install" in i.args for i in runtime), (
        "the runtime stage installs nothing: it copies the builder's venv"
    )
    copies = [i.args.split() for i in runtime if i.keyword == "COPY"]
    venv = next(c for c in copies if c[0] == "--from=builder")
    assert venv[1] == venv[2] == "/opt/venv"
    path = next(i.args for i in runtime if i.keyword == "ENV" and "PATH=" in i.args)
    assert "PATH=/opt/venv/bin:$PATH" in path


def test_dockerfile_installs_this_project_like_the_tests_do() -> None:
    builder = [i for i in dockerfile() if i.stage == 0]
    installs = [
        shlex.split(i.args)
        for i in builder
        if i.keyword == "RUN" and re.search(r"\bpip install\b", i.args)
    ]
    assert len(installs) == 1, installs
    argv = installs[0]
    assert argv[argv.index("install") + 1 :] == ["."], argv
    # The tests (Makefile) install the same project, from the same root, with extras.
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"pip install .*-e '\.\[test\]'", makefile)
    # `pip install .` needs pyproject.toml and every package setuptools is told to find.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    includes = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = {
        arg.rstrip("/").removeprefix("./")
        for i in builder
        if i.keyword == "COPY"
        for arg in i.args.split()[:-1]
    }
    assert "pyproject.toml" in copied
    for pattern in includes:
        package = pattern.rstrip("*")
        assert (ROOT / package / "__init__.py").exists(), package
        assert package in copied, f"the image lacks the package {package!r}"


def test_dockerfile_runs_coord_serve_as_a_non_root_user() -> None:
    runtime = final_stage(dockerfile())
    entrypoint = next(i for i in reversed(runtime) if i.keyword == "ENTRYPOINT").exec_form()
    cmd = next(i for i in reversed(runtime) if i.keyword == "CMD").exec_form()
    assert entrypoint == ["coord"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["coord"] == "coord.cli:main"
    assert parse_coord(cmd).command == "serve"
    user = next(i for i in reversed(runtime) if i.keyword == "USER").args
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, (
        f"USER {user}: a numeric non-root uid, so Kubernetes' runAsNonRoot can verify it"
    )
    useradd = next(i.args for i in runtime if i.keyword == "RUN" and "useradd" in i.args)
    assert f"--uid {uid}" in useradd
    assert [i.args for i in runtime if i.keyword == "EXPOSE"] == [str(PORT)]
    healthcheck = next(i.args for i in runtime if i.keyword == "HEALTHCHECK")
    assert "/healthz" in healthcheck


def test_dockerfile_environment_is_what_coord_reads() -> None:
    runtime = final_stage(dockerfile())
    coord_env = {k: v for k, v in image_environment().items() if k.startswith("COORD_")}
    assert set(coord_env) <= known_variables(), set(coord_env) - known_variables()
    config = Config.from_env(coord_env)
    assert (config.host, config.port, config.log_format) == ("0.0.0.0", PORT, "json")
    # COORD_HOME is the directory the non-root user owns.
    assert str(config.home) == "/var/lib/coord"
    useradd = next(i.args for i in runtime if i.keyword == "RUN" and "useradd" in i.args)
    assert "chown coord:coord /var/lib/coord" in useradd


def test_docker_build_context_leaves_out_local_state() -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    assert {".git", ".venv", ".coord"} <= set(ignore)


# --- Kubernetes --------------------------------------------------------------------------

K8S_VERSIONS = ("1.30", kubernetes_validate.latest_version())


def test_there_are_manifests_for_a_hub_a_region_and_their_federation() -> None:
    kinds = {(doc["kind"], doc["metadata"]["name"]) for _, doc in manifests()}
    assert {
        ("Namespace", "coord"),
        ("ConfigMap", "coord-hub"),
        ("Secret", "coord-hub"),
        ("Deployment", "coord-hub"),
        ("Service", "coord-hub"),
        ("ConfigMap", "coord-jatim"),
        ("Secret", "coord-jatim"),
        ("Deployment", "coord-jatim"),
        ("Service", "coord-jatim"),
        ("Job", "coord-federation-jatim"),
    } <= kinds


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", K8S_FILES, ids=lambda p: p.name)
def test_manifests_are_valid_by_the_kubernetes_schemas(path: Path, version: str) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_kubernetes_linter_rejects_a_misspelled_field() -> None:
    deployment = by_name("Deployment")["coord-hub"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["livenesProbe"] = container.pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="livenesProbe"):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


def test_manifests_say_postgresql_is_external_with_logical_wal() -> None:
    for path in K8S_APPLIED:
        text = path.read_text(encoding="utf-8")
        assert "wal_level=logical" in text, path.name
    assert "external" in (DEPLOY / "k8s" / "00-namespace.yaml").read_text(encoding="utf-8")


def test_the_applied_folder_holds_no_secret_and_no_placeholder() -> None:
    """Applying deploy/k8s/ must never overwrite (or fail on) an operator's real Secrets."""
    for path in K8S_APPLIED:
        text = path.read_text(encoding="utf-8")
        kinds = [d["kind"] for d in yaml.safe_load_all(text) if d is not None]
        assert "Secret" not in kinds and "CHANGE-ME" not in text, path.name
    examples = sorted((DEPLOY / "k8s-secrets.example").glob("*.yaml"))
    assert examples and all(
        "never `kubectl apply` this folder" in p.read_text(encoding="utf-8") for p in examples
    )


def test_every_resource_is_in_the_namespace() -> None:
    (namespace,) = of_kind("Namespace")
    for _, doc in manifests():
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace["metadata"]["name"], doc["kind"]


def node_environment(deployment: dict[str, Any]) -> dict[str, str]:
    """What a Deployment's coord container sees: the image's ENV, ConfigMaps, Secrets, env."""
    configmaps, secrets = by_name("ConfigMap"), by_name("Secret")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = image_environment()
    for source in container.get("envFrom", []):
        if ref := source.get("configMapRef"):
            env.update(configmaps[ref["name"]]["data"])
        if ref := source.get("secretRef"):
            env.update(secrets[ref["name"]]["stringData"])
    env.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    return env


def test_kubernetes_nodes_are_configured_with_variables_coord_reads() -> None:
    known = known_variables()
    deployments = of_kind("Deployment")
    assert deployments
    modes = {}
    for deployment in deployments:
        env = node_environment(deployment)
        coord_env = {k for k in env if k.startswith("COORD_")}
        assert coord_env <= known, coord_env - known
        assert {"COORD_DATABASE_URL", "COORD_SIGNING_KEY", "COORD_NODE_ID", "COORD_MODE"} <= (
            coord_env
        )
        config = Config.from_env(env)
        assert (config.host, config.port, config.log_format) == ("0.0.0.0", PORT, "json")
        modes[env["COORD_NODE_ID"]] = env["COORD_MODE"]
        assert env["COORD_MODE"] in MODES
        if env["COORD_MODE"] == "regional":
            assert re.fullmatch(r"\d{2}(\.\d{2})?(,\d{2}(\.\d{2})?)*", env["COORD_REGIONS"])
        # The signing key's name is the origin: the comment tells how to make one.
        origin = env.get("COORD_AUDIT_ORIGIN") or f"coord.local/{env['COORD_NODE_ID']}"
        name = deployment["metadata"]["name"]
        assert f"generate_signer('{origin}')" in "".join(
            p.read_text(encoding="utf-8") for p in K8S_FILES
        ), name
    assert sorted(modes.values()) == ["hub", "regional"]
    for secret in of_kind("Secret"):
        assert set(secret["stringData"]) <= known


def test_kubernetes_probes_ask_healthz_and_readyz_on_the_served_port() -> None:
    for deployment in of_kind("Deployment"):
        name = deployment["metadata"]["name"]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"http": PORT}, name
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            port = container[probe]["httpGet"]["port"]
            assert ports.get(port, port) == PORT, (name, probe)
        assert parse_coord(container["args"]).command == "serve", name
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]), name
        assert {"cpu", "memory"} <= set(resources["limits"]), name


def test_kubernetes_pods_run_as_the_images_non_root_user() -> None:
    user = next(i for i in reversed(final_stage(dockerfile())) if i.keyword == "USER").args
    uid = int(user.split(":")[0])
    pods = [d["spec"]["template"]["spec"] for d in of_kind("Deployment") + of_kind("Job")]
    assert pods
    for pod in pods:
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["runAsUser"] == uid
        for container in pod["containers"] + pod.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, container["name"]
            assert context["capabilities"]["drop"] == ["ALL"], container["name"]
    for deployment in of_kind("Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        if container["securityContext"].get("readOnlyRootFilesystem"):
            # coord writes under COORD_HOME (a generated key, demo tokens): keep it writable.
            home = str(Config.from_env(node_environment(deployment)).home)
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert {home, "/tmp"} <= mounts, deployment["metadata"]["name"]


def test_kubernetes_services_reach_their_deployments() -> None:
    deployments = by_name("Deployment")
    for name, service in by_name("Service").items():
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        selector = service["spec"]["selector"]
        assert selector.items() <= labels.items(), name
        assert deployments[name]["spec"]["selector"]["matchLabels"] == selector, name
        (port,) = service["spec"]["ports"]
        assert port["targetPort"] == "http", name


def test_kubernetes_federation_job_adds_the_region_to_the_hub() -> None:
    secrets = by_name("Secret")
    configmaps = by_name("ConfigMap")
    (job,) = of_kind("Job")
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    for ref in env.values():
        assert ref["key"] in secrets[ref["name"]]["stringData"], ref
    args: list[str] = container["args"]
    assert args[:2] == ["federation", "add-region"]
    # $(VAR) is Kubernetes' expansion from the container's env.
    refs = {a[2:-1]: flag for flag, a in itertools.pairwise(args) if a.startswith("$(")}
    assert refs.keys() <= env.keys(), refs
    by_flag = {flag: env[var]["name"] for var, flag in refs.items()}
    assert configmaps[by_flag["--hub-dsn"]]["data"]["COORD_MODE"] == "hub"
    region = configmaps[by_flag["--region-dsn"]]["data"]
    assert region["COORD_MODE"] == "regional"
    assert args[args.index("--name") + 1] == region["COORD_NODE_ID"]
    # It waits for both nodes' /readyz (each migrates its schema at start).
    (wait,) = pod["initContainers"]
    script = "\n".join(wait["command"])
    for node in (by_flag["--hub-dsn"], by_flag["--region-dsn"]):
        assert f"http://{node}:{PORT}/readyz" in script, node


def test_kubernetes_federation_job_arguments_parse() -> None:
    require_federation_cli()
    (job,) = of_kind("Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    args = parse_coord(container["args"])
    assert args.name == "jatim"


# --- docs --------------------------------------------------------------------------------


def test_deploy_readme_links_the_deployment_guide() -> None:
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    assert "../docs/deploy.md" in readme
    guide = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    for topic in ("add-region", "max_slot_wal_keep_size", "pg_stat_subscription_stats", "421"):
        assert topic in guide, topic
