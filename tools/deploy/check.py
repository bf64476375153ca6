#!/usr/bin/python3
"""Checks the packaging against the gateway it packages (make test runs it):

  tools/deploy/check.py --tracegate build/tracegate [--kubectl kubectl]

- deploy/kubernetes: rendered with `kubectl kustomize`; every kind there; the conf in the
  ConfigMap passes `tracegate --check`, and the gateway started on it answers the probes' paths
  on the admin port they name; the grace arithmetic (terminationGracePeriodSeconds above the
  preStop pause + shutdown_grace_ms + 5 s); non-root, read-only root, no capabilities; selectors,
  the hashed ConfigMap name, the HPA target, the image tag.
- docker: the HEALTHCHECK names the admin port and /healthz of conf/docker.json, tg-stub stays
  out of the runtime stage, compose's stop_grace_period is above the drain grace.
- deploy/systemd/tracegate.service: --check before start, SIGHUP reload, LimitNOFILE, the
  hardening options, TimeoutStopSec above the default drain grace; `systemd-analyze verify`
  where systemd-analyze exists.

Uses Debian's python3 and python3-yaml only. Prints each failed check; exits 1 if any failed.
"""
import argparse
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
failures = []
passed = 0


def check(ok, what):
    global passed
    if ok:
        passed += 1
    else:
        failures.append(what)
    return ok


def conf_check(tracegate, text, what):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        r = subprocess.run([tracegate, "--check", "-c", path], capture_output=True, text=True,
                           timeout=30)
        check(r.returncode == 0, f"{what}: tracegate --check fails: {r.stderr.strip()}")
    finally:
        os.unlink(path)


def listen_port(addr):
    return int(addr.rsplit(":", 1)[1])


def serve_paths(tracegate, conf_text, paths, what):
    """Starts the gateway on conf_text (ports from the kernel) and GETs paths on its admin
    listener: each must answer 200. Then SIGTERM: it must exit 0."""
    with tempfile.TemporaryDirectory() as d:
        conf = os.path.join(d, "tracegate.json")
        log = os.path.join(d, "log")
        with open(conf, "w") as f:
            f.write(conf_text)
        with open(log, "w") as out:
            p = subprocess.Popen([tracegate, "-c", conf, "--port", "0", "--admin-port", "0",
                                  "--workers", "1"], stdout=out, stderr=subprocess.STDOUT)
        admin = None
        try:
            end = time.time() + 10
            while admin is None and time.time() < end and p.poll() is None:
                for line in open(log):
                    m = re.search(r'"event":"listening".*"admin":"[^"]*:(\d+)"', line)
                    if m:
                        admin = int(m.group(1))
                time.sleep(0.05)
            if not check(admin is not None, f"{what}: the gateway did not start: "
                         f"{open(log).read()[-500:]}"):
                return
            for path in paths:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{admin}{path}",
                                                timeout=5) as r:
                        status = r.status
                except Exception as e:  # an HTTP error or no answer
                    status = getattr(e, "code", str(e))
                check(status == 200, f"{what}: GET {path} on the admin port: {status}")
        finally:
            p.send_signal(signal.SIGTERM)
            try:
                rc = p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = "timeout"
            check(rc == 0, f"{what}: the gateway exited {rc} on SIGTERM")


# ---- Kubernetes ---------------------------------------------------------------------------

def container_port(container, port):
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    return None


def check_kubernetes(tracegate, kubectl):
    r = subprocess.run([kubectl, "kustomize", os.path.join(ROOT, "deploy/kubernetes")],
                       capture_output=True, text=True, timeout=120)
    if not check(r.returncode == 0, f"kubectl kustomize failed: {r.stderr.strip()}"):
        return
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    for kind in ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
                 "ConfigMap"]:
        check(len(by_kind.get(kind, [])) == 1, f"kubernetes: expected one {kind}")
    if failures:
        return
    dep = by_kind["Deployment"][0]
    cm = by_kind["ConfigMap"][0]
    svc = by_kind["Service"][0]
    hpa = by_kind["HorizontalPodAutoscaler"][0]
    pdb = by_kind["PodDisruptionBudget"][0]
    pod = dep["spec"]["template"]
    spec = pod["spec"]
    c = spec["containers"][0]
    labels = pod["metadata"]["labels"]

    # The conf: valid, its admin listener reachable from the kubelet, its port the probes'.
    conf_text = cm["data"]["tracegate.json"]
    conf_check(tracegate, conf_text, "kubernetes ConfigMap conf")
    conf = json.loads(conf_text)
    admin = conf.get("admin", {}).get("listen", "127.0.0.1:9901")
    check(admin.startswith("0.0.0.0:") or admin.startswith("[::]:"),
          f"kubernetes: admin.listen {admin} is not reachable by the kubelet's probes")
    admin_port = listen_port(admin)
    check(container_port(c, "http") == listen_port(conf.get("listen", "0.0.0.0:8080")),
          "kubernetes: the http containerPort is not the conf's listen port")

    # Probes: readiness /readyz, liveness /healthz, on the admin port; real paths there.
    ready = c.get("readinessProbe", {}).get("httpGet", {})
    live = c.get("livenessProbe", {}).get("httpGet", {})
    check(ready.get("path") == "/readyz", "kubernetes: readiness probe is not /readyz")
    check(live.get("path") == "/healthz", "kubernetes: liveness probe is not /healthz")
    for name, probe in [("readiness", ready), ("liveness", live)]:
        check(container_port(c, probe.get("port")) == admin_port,
              f"kubernetes: {name} probe port is not the admin port {admin_port}")
    ann = pod["metadata"].get("annotations", {})
    check(ann.get("prometheus.io/port") == str(admin_port),
          "kubernetes: prometheus.io/port is not the admin port")
    serve_paths(tracegate, conf_text,
                [ready.get("path"), live.get("path"), ann.get("prometheus.io/path", "/metrics")],
                "kubernetes probes")

    # Grace: the pause, then the whole drain, then the exit, before SIGKILL.
    pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pause = int(pre[1]) if len(pre) == 2 and pre[0] == "sleep" else None
    check(pause is not None and pause >= 5, f"kubernetes: preStop is not a sleep of 5 s or more: {pre}")
    drain_s = math.ceil(conf.get("shutdown_grace_ms", 10000) / 1000)
    grace = spec.get("terminationGracePeriodSeconds", 30)
    check(pause is not None and grace >= pause + drain_s + 5,
          f"kubernetes: terminationGracePeriodSeconds {grace} < preStop {pause} + drain "
          f"{drain_s} + 5")

    # Security.
    psc = spec.get("securityContext", {})
    csc = c.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0,
          "kubernetes: not non-root")
    check(csc.get("readOnlyRootFilesystem") is True, "kubernetes: root file system writable")
    check(csc.get("allowPrivilegeEscalation") is False, "kubernetes: privilege escalation allowed")
    check("ALL" in csc.get("capabilities", {}).get("drop", []),
          "kubernetes: capabilities not dropped")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
          "kubernetes: no RuntimeDefault seccomp profile")

    # The conf's ConfigMap: hashed name (a new conf is a new name: a rollout), mounted.
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    names = [v.get("configMap", {}).get("name") for v in vols.values()]
    check(cm["metadata"]["name"] in names, "kubernetes: the ConfigMap is not mounted")
    check(re.fullmatch(r"tracegate-conf-[a-z0-9]{6,}", cm["metadata"]["name"]) is not None,
          f"kubernetes: ConfigMap name {cm['metadata']['name']} carries no content hash")
    mounts = [m["mountPath"] for m in c.get("volumeMounts", [])]
    args = c.get("args", [])
    check("-c" in args and os.path.dirname(args[args.index("-c") + 1]) in mounts,
          "kubernetes: -c does not point into the mounted conf")

    # The objects point at each other.
    def selects(sel):
        return all(labels.get(k) == v for k, v in sel.items())
    check(selects(svc["spec"]["selector"]), "kubernetes: the Service selects no pod")
    check(selects(pdb["spec"]["selector"]["matchLabels"]), "kubernetes: the PDB selects no pod")
    check(selects(dep["spec"]["selector"]["matchLabels"]), "kubernetes: selector and labels differ")
    for p in svc["spec"]["ports"]:
        check(container_port(c, p["targetPort"]) is not None,
              f"kubernetes: Service targetPort {p['targetPort']} is no container port")
    check(hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"],
          "kubernetes: the HPA scales another Deployment")
    check(hpa["spec"].get("minReplicas", 1) >= 2, "kubernetes: HPA minReplicas below 2")
    check("cpu" in c.get("resources", {}).get("requests", {}),
          "kubernetes: no CPU request for the HPA to work from")
    check(pdb["spec"].get("maxUnavailable") == 1, "kubernetes: PDB maxUnavailable is not 1")
    image = c.get("image", "")
    check(":" in image and not image.endswith(":latest"), f"kubernetes: image {image} has no tag")


# ---- Docker -------------------------------------------------------------------------------

def seconds(text):
    m = re.fullmatch(r"(\d+)(ms|s|m)?", str(text))
    if not m:
        return None
    n = int(m.group(1))
    return n / 1000 if m.group(2) == "ms" else n * 60 if m.group(2) == "m" else n


def check_docker(tracegate):
    dockerfile = open(os.path.join(ROOT, "docker/Dockerfile")).read()
    conf_text = open(os.path.join(ROOT, "conf/docker.json")).read()
    conf_check(tracegate, conf_text, "conf/docker.json")
    conf = json.loads(conf_text)
    admin = conf.get("admin", {}).get("listen", "127.0.0.1:9901")
    stages = re.split(r"(?m)^FROM ", dockerfile)
    runtime = [s for s in stages if re.match(r"\S+ AS runtime\b", s)]
    demo = [s for s in stages if re.match(r"\S+ AS demo\b", s)]
    if not check(len(runtime) == 1 and len(demo) == 1, "docker: no runtime and demo stages"):
        return
    hc = re.search(r"HEALTHCHECK(?:[^\n\\]|\\\n)*", runtime[0])
    check(hc is not None, "docker: the runtime stage has no HEALTHCHECK")
    if hc:
        url = re.search(r"http://127\.0\.0\.1:(\d+)(/\S*)", hc.group(0))
        check(url is not None and int(url.group(1)) == listen_port(admin) and
              url.group(2) == "/healthz",
              f"docker: HEALTHCHECK is not /healthz on the admin port of conf/docker.json ({admin})")
    def copies(stage):
        return " ".join(l for l in stage.splitlines() if l.startswith("COPY"))
    check("tg-stub" not in copies(runtime[0]), "docker: tg-stub is in the runtime stage")
    check("tg-stub" in copies(demo[0]), "docker: the demo stage lacks tg-stub")
    check(re.search(r"(?m)^USER (?!root|0\b)\S+", runtime[0]) is not None,
          "docker: the runtime stage runs as root")
    compose = yaml.safe_load(open(os.path.join(ROOT, "docker/compose.yaml")))
    gw = compose["services"]["gateway"]
    drain_s = conf.get("shutdown_grace_ms", 10000) / 1000
    grace = seconds(gw.get("stop_grace_period", "10s"))
    check(grace is not None and grace > drain_s,
          f"docker: compose stop_grace_period {gw.get('stop_grace_period')} is not above the "
          f"drain grace {drain_s} s")
    check(gw.get("restart") in ("always", "unless-stopped", "on-failure"),
          "docker: compose gateway has no restart policy")
    check(gw.get("build", {}).get("target") == "runtime",
          "docker: compose gateway is not the runtime stage")


# ---- systemd ------------------------------------------------------------------------------

def check_systemd(tracegate):
    path = os.path.join(ROOT, "deploy/systemd/tracegate.service")
    text = open(path).read()
    keys = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z]+)=(.*)$", line)
        if m:
            keys.setdefault(m.group(1), []).append(m.group(2))
    pre = " ".join(keys.get("ExecStartPre", []))
    check("--check" in pre and "-c" in pre, "systemd: ExecStartPre does not run --check")
    check(any("HUP" in v for v in keys.get("ExecReload", [])), "systemd: ExecReload is not SIGHUP")
    check(int(keys.get("LimitNOFILE", ["0"])[0]) >= 20064,
          "systemd: LimitNOFILE below two descriptors per default client connection")
    stop = seconds(keys.get("TimeoutStopSec", ["90"])[0])
    check(stop is not None and stop > 10, "systemd: TimeoutStopSec not above the 10 s drain grace")
    for k, v in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                 ("PrivateTmp", "yes"), ("CapabilityBoundingSet", "")]:
        check(keys.get(k, [None])[0] == v, f"systemd: {k}={v} missing")
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        print("deploy: systemd-analyze not found: unit file not verified by systemd")
        return
    with tempfile.TemporaryDirectory() as d:
        # The unit names the installed paths; point them at this build to verify it here.
        unit = os.path.join(d, "tracegate.service")
        with open(unit, "w") as f:
            f.write(text.replace("/usr/local/bin/tracegate", os.path.abspath(tracegate)))
        r = subprocess.run([analyze, "verify", unit], capture_output=True, text=True, timeout=60)
        out = "\n".join(l for l in (r.stdout + r.stderr).splitlines()
                        if "tracegate.service" in l or "Unknown" in l)
        check(r.returncode == 0 and out == "", f"systemd-analyze verify: {out or r.returncode}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tracegate", required=True)
    ap.add_argument("--kubectl", default="kubectl")
    a = ap.parse_args()
    if shutil.which(a.kubectl) is None:
        failures.append(f"{a.kubectl} not found: `make test` installs Debian's kubernetes-client")
    else:
        check_kubernetes(a.tracegate, a.kubectl)
    check_docker(a.tracegate)
    check_systemd(a.tracegate)
    for f in failures:
        print(f"deploy: FAILED: {f}")
    print(f"deploy: {passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
