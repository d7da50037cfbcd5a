#!/usr/bin/env python3
"""Schema check of deploy/kubernetes (and the Grafana assets) for ctest.

Schemas come from package registries, pinned, fetched once into --cache:
  - Kubernetes: the JSON schemas bundled in the PyPI package `kubernetes-validate`
    (pip install --target; its dependencies jsonschema and PyYAML come with it);
  - KEDA: the ScaledObject CRD (config/crd/bases/keda.sh_scaledobjects.yaml) and the
    trigger metadata declarations (pkg/scalers/*_scaler.go struct tags) of the Go
    module github.com/kedacore/keda/v2, via `go mod download` (the Go module proxy).

Checked:
  - every core object (Namespace, ConfigMap, Deployment, Service) against the
    Kubernetes schema, strictly (unknown fields are errors);
  - every ScaledObject against the CRD's openAPIV3Schema, made strict the way the API
    server's pruning would silently drop unknown fields; trigger metadata against the
    KEDA scaler's declared keys (required ones present, no unknown keys, enums);
  - cross references: scaleTargetRef -> a Deployment, Service targetPorts -> named
    container ports, probes -> the HTTP port, the ConfigMap's sluice.yaml passes
    `sluice validate` and listens on the container ports, the Prometheus trigger only
    uses PRODUCT.md section 7 metrics;
  - the Dockerfile: Debian base images, every apt package exists in the Debian archive
    (apt-cache), the build stage installs every build package of sluice.sh;
  - the Grafana dashboard JSON and provisioning files (structure);
  - and then that broken copies of the objects are rejected (the check can fail).
"""
import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys

K8S_VALIDATE = "kubernetes-validate==1.37.0"
K8S_VERSION = "1.30.0"
KEDA_MODULE = "github.com/kedacore/keda/v2@v2.21.0"
SECTION7 = {
    "sluice_events_received_total", "sluice_invocations_total",
    "sluice_invocation_duration_seconds", "sluice_invocation_duration_seconds_bucket",
    "sluice_invocation_duration_seconds_sum", "sluice_invocation_duration_seconds_count",
    "sluice_retries_total", "sluice_dead_letters_total", "sluice_inflight", "sluice_workers",
    "sluice_workers_desired", "sluice_consumer_lag", "sluice_consumer_lag_seconds",
    "sluice_published_total",
    "sluice_build_info",  # not section 7: the build of each pod (metrics/README.md)
}


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


# --- fetching the schemas (once) -------------------------------------------------

def ensure_python_deps(cache):
    target = os.path.join(cache, "python")
    marker = os.path.join(target, ".installed-" + K8S_VALIDATE)
    if not os.path.exists(marker):
        shutil.rmtree(target, ignore_errors=True)
        r = run([sys.executable, "-m", "pip", "--version"])
        if r.returncode != 0:
            fail("python3 has no pip (Debian package python3-pip): cannot fetch " + K8S_VALIDATE)
        r = run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 "--no-input", "--target", target, K8S_VALIDATE])
        if r.returncode != 0:
            fail("pip install %s from PyPI failed:\n%s" % (K8S_VALIDATE, r.stderr))
        open(marker, "w").close()
    sys.path.insert(0, target)


def ensure_keda(cache):
    if shutil.which("go") is None:
        fail("no `go` (Debian package golang-go): cannot fetch the KEDA CRD module " + KEDA_MODULE)
    env = dict(os.environ, GOMODCACHE=os.path.join(cache, "gomod"), GOFLAGS="-modcacherw",
               GO111MODULE="on", GOTOOLCHAIN="local")
    workdir = os.path.join(cache, "gowork")
    os.makedirs(workdir, exist_ok=True)
    r = run(["go", "mod", "download", "-json", KEDA_MODULE], env=env, cwd=workdir)
    if r.returncode != 0:
        fail("go mod download %s failed:\n%s%s" % (KEDA_MODULE, r.stdout, r.stderr))
    return json.loads(r.stdout)["Dir"]


# --- loading ---------------------------------------------------------------------

def load_docs(paths):
    import yaml
    docs = []
    for p in paths:
        with open(p) as f:
            for d in yaml.safe_load_all(f):
                if d is not None:
                    docs.append((p, d))
    return docs


def strict(schema):
    """Unknown fields become errors (the API server would prune them silently)."""
    if isinstance(schema, dict):
        if (schema.get("type") == "object" and "properties" in schema
                and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        for v in schema.values():
            strict(v)
    elif isinstance(schema, list):
        for v in schema:
            strict(v)
    return schema


def keda_schema(keda_dir):
    import yaml
    with open(os.path.join(keda_dir, "config/crd/bases/keda.sh_scaledobjects.yaml")) as f:
        crd = yaml.safe_load(f)
    for v in crd["spec"]["versions"]:
        if v["name"] == "v1alpha1":
            s = strict(copy.deepcopy(v["schema"]["openAPIV3Schema"]))
            # metadata is validated by the API server, not the CRD: require the basics.
            s["properties"]["metadata"] = {
                "type": "object", "required": ["name"],
                "properties": {"name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                               "namespace": {"type": "string"},
                               "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                               "annotations": {"type": "object", "additionalProperties": {"type": "string"}}},
                "additionalProperties": False}
            s.setdefault("required", [])
            for k in ("apiVersion", "kind", "metadata", "spec"):
                if k not in s["required"]:
                    s["required"].append(k)
            s["properties"]["apiVersion"] = {"const": "keda.sh/v1alpha1"}
            s["properties"]["kind"] = {"const": "ScaledObject"}
            return s
    fail("the KEDA CRD has no v1alpha1 version")


def trigger_metadata(keda_dir, trigger):
    """The metadata keys a KEDA scaler declares: {name: (required, enum or None)}."""
    path = os.path.join(keda_dir, "pkg/scalers/%s_scaler.go" % trigger)
    if not os.path.exists(path):
        fail("KEDA has no scaler source for trigger type %r" % trigger)
    keys = {}
    for tag in re.findall(r'keda:"([^"]*)"', open(path).read()):
        fields = dict(kv.split("=", 1) if "=" in kv else (kv.strip(), "")
                      for kv in [t.strip() for t in tag.split(",")])
        if "name" not in fields or "triggerMetadata" not in fields.get("order", ""):
            continue
        required = "optional" not in fields and "default" not in fields
        # order=...;authParams: may come from a TriggerAuthentication instead.
        if "authParams" in fields.get("order", ""):
            required = False
        enum = fields.get("enum")
        for name in fields["name"].split(";"):
            keys[name] = (required, enum.split(";") if enum else None)
            if "resolvedEnv" in fields.get("order", ""):  # `<name>FromEnv` names an env var
                keys[name + "FromEnv"] = (False, None)
    if not keys:
        fail("found no metadata declarations in " + path)
    return keys


# --- the checks ------------------------------------------------------------------

def check_core(doc):
    import kubernetes_validate
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        return ["%s: %s" % ("/".join(str(p) for p in e.path), e.message)]
    except Exception as e:  # unknown kind/version
        return [str(e)]
    return []


def check_scaled_object(doc, schema, keda_dir):
    import jsonschema
    errs = ["%s: %s" % ("/".join(str(p) for p in e.absolute_path) or "(root)", e.message)
            for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]
    for i, t in enumerate((doc.get("spec") or {}).get("triggers") or []):
        declared = trigger_metadata(keda_dir, t.get("type", ""))
        md = t.get("metadata") or {}
        for k, (required, _) in declared.items():
            if required and k not in md and k + "FromEnv" not in md:
                errs.append("triggers[%d] (%s): metadata.%s is required" % (i, t["type"], k))
        for k, v in md.items():
            if k not in declared:
                errs.append("triggers[%d] (%s): unknown metadata key %r" % (i, t["type"], k))
            elif declared[k][1] and v not in declared[k][1]:
                errs.append("triggers[%d] (%s): metadata.%s=%r not in %s" % (i, t["type"], k, v, declared[k][1]))
        if t.get("type") == "prometheus":
            names = set(re.findall(r"\bsluice_[a-z_]+", md.get("query", "")))
            if "sluice_consumer_lag" not in names:
                errs.append("triggers[%d]: the Prometheus query does not use sluice_consumer_lag" % i)
            for n in names - SECTION7:
                errs.append("triggers[%d]: %s is not a PRODUCT.md section 7 metric" % (i, n))
    return errs


def cross_check(docs, sluice):
    errs = []
    by_kind = {}
    for _, d in docs:
        by_kind.setdefault(d.get("kind"), []).append(d)
    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
    for so in by_kind.get("ScaledObject", []):
        ref = so["spec"]["scaleTargetRef"]
        if ref.get("kind", "Deployment") != "Deployment" or ref["name"] not in deployments:
            errs.append("ScaledObject %s: scaleTargetRef %s is not a Deployment here" % (so["metadata"]["name"], ref))
        if so["spec"].get("maxReplicaCount", 100) < so["spec"].get("minReplicaCount", 0):
            errs.append("ScaledObject %s: maxReplicaCount < minReplicaCount" % so["metadata"]["name"])
    for dep in deployments.values():
        pod = dep["spec"]["template"]
        sel = dep["spec"]["selector"].get("matchLabels", {})
        if any(pod["metadata"].get("labels", {}).get(k) != v for k, v in sel.items()):
            errs.append("Deployment %s: selector does not match the pod labels" % dep["metadata"]["name"])
        ports = {p["name"]: p["containerPort"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
        for c in pod["spec"]["containers"]:
            for probe in ("readinessProbe", "livenessProbe"):
                port = (c.get(probe) or {}).get("httpGet", {}).get("port")
                if port is not None and port not in ports and port not in ports.values():
                    errs.append("%s of %s names port %r, not a container port" % (probe, c["name"], port))
        for svc in by_kind.get("Service", []):
            for p in svc["spec"]["ports"]:
                tp = p.get("targetPort", p["port"])
                if tp not in ports and tp not in ports.values():
                    errs.append("Service %s: targetPort %r is no container port" % (svc["metadata"]["name"], tp))
        # The ConfigMap mounted as the config: valid for sluice, listening on the ports.
        for vol in pod["spec"].get("volumes", []):
            cm_name = (vol.get("configMap") or {}).get("name")
            if not cm_name:
                continue
            cms = [c for c in by_kind.get("ConfigMap", []) if c["metadata"]["name"] == cm_name]
            if not cms:
                errs.append("volume %s: no ConfigMap %s" % (vol["name"], cm_name))
                continue
            text = cms[0]["data"].get("sluice.yaml", "")
            import yaml
            cfg = yaml.safe_load(text)
            for section, port_name in (("http", "http"), ("metrics", "metrics")):
                listen = str((cfg.get(section) or {}).get("listen", ""))
                if not listen.endswith(":%d" % ports.get(port_name, -1)):
                    errs.append("ConfigMap %s: %s.listen %r is not the %s container port %s"
                                % (cm_name, section, listen, port_name, ports.get(port_name)))
                if listen.startswith("127."):
                    errs.append("ConfigMap %s: %s.listen %r is loopback-only in a pod" % (cm_name, section, listen))
            if sluice:
                tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), "sluice-cm-%d.yaml" % os.getpid())
                with open(tmp, "w") as f:
                    f.write(text)
                r = run([sluice, "validate", "-c", tmp])
                os.unlink(tmp)
                if r.returncode != 0:
                    errs.append("ConfigMap %s: sluice validate fails: %s" % (cm_name, (r.stdout + r.stderr).strip()))
    return errs


def apt_lists_present():
    d = "/var/lib/apt/lists"
    return os.path.isdir(d) and any(f.endswith("_Packages") or "_Packages." in f for f in os.listdir(d))


def check_dockerfile(path, sluice_sh):
    errs = []
    text = open(path).read().replace("\\\n", " ")
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    if not froms or any(not f.startswith("debian:") for f in froms):
        errs.append("Dockerfile: every stage must be FROM debian:* (got %s)" % froms)
    if "cmake --build" not in text:
        errs.append("Dockerfile: sluice is not built with cmake")
    stages = re.split(r"^FROM\s", text, flags=re.M)[1:]
    installed = []
    for s in stages:
        pk = []
        for m in re.finditer(r"apt-get install ([^&]*)", s):
            pk += [w for w in m.group(1).split() if not w.startswith("-") and not w.startswith("$")]
        installed.append(pk)
    have_lists = apt_lists_present()
    if not have_lists:
        print("note: no apt package lists (run apt-get update): package names not checked")
    names = sorted({p for pk in installed for p in pk}) if have_lists else []
    # One `apt-cache policy` for all: a known package has a "Candidate:" version.
    out = run(["apt-cache", "policy"] + names).stdout if names else ""
    known = {m.group(1) for m in re.finditer(r"^(\S+):\n\s+Installed: .*\n\s+Candidate: (?!\(none\))", out, re.M)}
    for p in names:
        if p not in known:
            errs.append("Dockerfile: apt package %s does not exist in the Debian archive" % p)
    m = re.search(r"PACKAGES=\(([^)]*)\)", open(sluice_sh).read())
    if m:
        # Tests are off in the image (SLUICE_BUILD_TESTS=OFF): no gtest, no curl.
        need = set(m.group(1).split()) - {"curl", "libgtest-dev", "libgmock-dev", "google-mock"}
        missing = need - set(installed[0] if installed else [])
        if missing:
            errs.append("Dockerfile build stage lacks sluice.sh build packages: %s" % sorted(missing))
    return errs


def check_grafana(grafana):
    import yaml
    errs = []
    dash_dir = os.path.join(grafana, "dashboards")
    dashboards = [f for f in os.listdir(dash_dir) if f.endswith(".json")]
    if not dashboards:
        errs.append("no dashboard JSON in " + dash_dir)
    for f in dashboards:
        d = json.load(open(os.path.join(dash_dir, f)))
        for k in ("uid", "title", "panels", "templating", "schemaVersion"):
            if k not in d:
                errs.append("%s: no %s" % (f, k))
        ids = [p.get("id") for p in d.get("panels", [])]
        if len(ids) != len(set(ids)) or None in ids:
            errs.append("%s: panel ids missing or not unique" % f)
        for p in d.get("panels", []):
            if p.get("type") == "row":
                continue
            for k in ("title", "type", "gridPos", "datasource", "targets"):
                if k not in p:
                    errs.append("%s: panel %s has no %s" % (f, p.get("title"), k))
            for t in p.get("targets", []):
                if not t.get("expr") or not t.get("refId"):
                    errs.append("%s: panel %s has a target without expr/refId" % (f, p.get("title")))
                for n in set(re.findall(r"\bsluice_[a-z_]+", t.get("expr", ""))) - SECTION7:
                    errs.append("%s: panel %s uses %s, not a PRODUCT.md section 7 metric" % (f, p.get("title"), n))
        names = {v.get("name") for v in d.get("templating", {}).get("list", [])}
        for v in ("function", "topic"):
            if v not in names:
                errs.append("%s: no template variable %s" % (f, v))
    ds = yaml.safe_load(open(os.path.join(grafana, "provisioning/datasources/sluice.yaml")))
    if ds.get("apiVersion") != 1 or not all({"name", "type", "url"} <= set(x) for x in ds.get("datasources", [])):
        errs.append("provisioning/datasources/sluice.yaml: apiVersion 1 with name/type/url per datasource")
    db = yaml.safe_load(open(os.path.join(grafana, "provisioning/dashboards/sluice.yaml")))
    if db.get("apiVersion") != 1 or not all(p.get("type") == "file" and p.get("options", {}).get("path")
                                           for p in db.get("providers", [])):
        errs.append("provisioning/dashboards/sluice.yaml: apiVersion 1 with file providers and a path")
    return errs


_MEMO = {}  # the schema checks of one object, by its JSON text (the broken copies repeat most)


def validate_all(docs, schema, keda_dir, sluice):
    errs = []
    for path, d in docs:
        kind = d.get("kind") if isinstance(d, dict) else None
        where = "%s: %s %s" % (os.path.basename(path), kind, (d.get("metadata") or {}).get("name") if isinstance(d, dict) else "")
        key = json.dumps(d, sort_keys=True)
        if key not in _MEMO:
            _MEMO[key] = (check_scaled_object(d, schema, keda_dir) if kind == "ScaledObject"
                          else check_core(d))
        errs += [where + ": " + e for e in _MEMO[key]]
    if not errs:
        errs += cross_check(docs, sluice)
    return errs


def negative_cases(docs):
    """Broken copies, each of which must be rejected."""
    def find(kind, pred=lambda d: True):
        for i, (_, d) in enumerate(docs):
            if d.get("kind") == kind and pred(d):
                return i
        fail("no %s to break" % kind)

    def broken(kind, mutate, pred=lambda d: True):
        out = copy.deepcopy(docs)
        i = find(kind, pred)
        mutate(out[i][1])
        return out

    kafka = lambda d: d["spec"]["triggers"][0]["type"] == "kafka"
    prom = lambda d: d["spec"]["triggers"][0]["type"] == "prometheus"
    return [
        ("ScaledObject without scaleTargetRef", broken("ScaledObject", lambda d: d["spec"].pop("scaleTargetRef"))),
        ("ScaledObject with a misspelt field (minReplicas)",
         broken("ScaledObject", lambda d: d["spec"].__setitem__("minReplicas", 1))),
        ("ScaledObject with a string replica count",
         broken("ScaledObject", lambda d: d["spec"].__setitem__("maxReplicaCount", "12"))),
        ("Kafka trigger without a consumer group",
         broken("ScaledObject", lambda d: d["spec"]["triggers"][0]["metadata"].pop("consumerGroup"), kafka)),
        ("Kafka trigger with an unknown key",
         broken("ScaledObject", lambda d: d["spec"]["triggers"][0]["metadata"].__setitem__("lagTreshold", "5"), kafka)),
        ("Kafka trigger with a bad enum",
         broken("ScaledObject", lambda d: d["spec"]["triggers"][0]["metadata"].__setitem__("offsetResetPolicy", "oldest"), kafka)),
        ("Prometheus trigger without a threshold",
         broken("ScaledObject", lambda d: d["spec"]["triggers"][0]["metadata"].pop("threshold"), prom)),
        ("Prometheus trigger on a metric outside section 7",
         broken("ScaledObject", lambda d: d["spec"]["triggers"][0]["metadata"].__setitem__("query", "sum(kafka_lag)"), prom)),
        ("ScaledObject aimed at a missing Deployment",
         broken("ScaledObject", lambda d: d["spec"]["scaleTargetRef"].__setitem__("name", "nope"))),
        ("Deployment without a selector", broken("Deployment", lambda d: d["spec"].pop("selector"))),
        ("Deployment with an unknown container field",
         broken("Deployment", lambda d: d["spec"]["template"]["spec"]["containers"][0].__setitem__("command_", ["x"]))),
        ("Deployment with a string containerPort",
         broken("Deployment", lambda d: d["spec"]["template"]["spec"]["containers"][0]["ports"][0].__setitem__("containerPort", "8080"))),
        ("Service pointing at an unknown port",
         broken("Service", lambda d: d["spec"]["ports"][0].__setitem__("targetPort", "web"))),
        ("ConfigMap with a loopback listen",
         broken("ConfigMap", lambda d: d["data"].__setitem__("sluice.yaml", d["data"]["sluice.yaml"].replace("0.0.0.0:8080", "127.0.0.1:8080")))),
        ("ConfigMap sluice.yaml that sluice rejects",
         broken("ConfigMap", lambda d: d["data"].__setitem__("sluice.yaml", d["data"]["sluice.yaml"].replace("target_lag: 500", "target_lag: lots")))),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--deploy", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--sluice", help="the sluice binary, for `sluice validate` of the ConfigMap")
    a = ap.parse_args()
    a.cache = os.path.abspath(a.cache)
    os.makedirs(a.cache, exist_ok=True)
    ensure_python_deps(a.cache)
    keda_dir = ensure_keda(a.cache)
    schema = keda_schema(keda_dir)
    sluice = a.sluice if a.sluice and os.path.exists(a.sluice) else None
    if a.sluice and not sluice:
        fail("no sluice binary at %s (build the `sluice` target first)" % a.sluice)

    k8s = os.path.join(a.deploy, "kubernetes")
    files = sorted(os.path.join(k8s, f) for f in os.listdir(k8s) if f.endswith(".yaml"))
    files += sorted(os.path.join(k8s, "keda", f) for f in os.listdir(os.path.join(k8s, "keda")) if f.endswith(".yaml"))
    docs = load_docs(files)
    kinds = sorted(d.get("kind") for _, d in docs)
    for k in ("ConfigMap", "Deployment", "ScaledObject", "Service"):
        if k not in kinds:
            fail("deploy/kubernetes has no %s (found %s)" % (k, kinds))
    triggers = {d["spec"]["triggers"][0]["type"] for _, d in docs if d.get("kind") == "ScaledObject"}
    if not {"kafka", "prometheus"} <= triggers:
        fail("want a ScaledObject with a kafka trigger and one with a prometheus trigger, got %s" % triggers)

    errs = validate_all(docs, schema, keda_dir, sluice)
    errs += check_dockerfile(os.path.join(k8s, "Dockerfile"), os.path.join(a.deploy, "..", "sluice.sh"))
    errs += check_grafana(os.path.join(a.deploy, "grafana"))
    if errs:
        fail("%d problem(s):\n  " % len(errs) + "\n  ".join(errs))
    print("ok: %d objects (%s) valid against Kubernetes %s and KEDA %s"
          % (len(docs), ", ".join(kinds), K8S_VERSION, KEDA_MODULE.split("@")[1]))

    missed = []
    for name, bad in negative_cases(docs):
        if name.startswith("ConfigMap sluice.yaml") and not sluice:
            continue
        e = validate_all(bad, schema, keda_dir, sluice)
        if not e:
            missed.append(name)
        else:
            print("rejected as expected: %s -> %s" % (name, e[0]))
    dockerfile = open(os.path.join(k8s, "Dockerfile")).read()
    for name, text in (("Dockerfile with an unknown apt package", dockerfile.replace("libfmt9", "libfmt99")),
                       ("Dockerfile on a non-Debian base", dockerfile.replace("FROM debian:bookworm-slim", "FROM alpine:3")),
                       ("Dockerfile without a build package", dockerfile.replace(" libyaml-cpp-dev", ""))):
        tmp = os.path.join(a.cache, "Dockerfile.broken")
        with open(tmp, "w") as f:
            f.write(text)
        e = check_dockerfile(tmp, os.path.join(a.deploy, "..", "sluice.sh"))
        if not e and ("apt package" not in name or apt_lists_present()):
            missed.append(name)
        elif e:
            print("rejected as expected: %s -> %s" % (name, e[0]))
    if missed:
        fail("the check accepted broken objects: " + "; ".join(missed))


if __name__ == "__main__":
    main()
