"""Stand-in for GitHub's Actions runner (GitHub's hosted runners cannot be reached from
here), for tests only: it runs a workflow file, and the composite actions it uses, the way
a runner does, so that a test exercises `action.yml` and the README's workflow as they are
written, not a hand-made copy of their environment.

What it does as GitHub does:
- triggers: `on:` with branch and tag filters (`branches`, `branches-ignore`, `tags`,
  globs), pull-request `types`; a workflow the event does not trigger runs no job;
- jobs in `needs:` order, each with `if:` (default `success()`), its own workspace, HOME
  and RUNNER_TEMP (a fresh machine), and a GITHUB_TOKEN minted for it with the job's
  effective `permissions:` (the job's, else the workflow's, else GitHub's restricted
  default: contents and packages read). A pull request from a fork
  (`pull_request.head.repo.fork`) gets every write scope lowered to read and no OIDC.
  ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN are set only with `id-token: write`. Tokens and their
  scopes are written to the `--tokens` file, which the GitHub API and GHCR stand-ins read;
- steps: `if:` (implicitly `success() && …`), `run:` with the default shell (`bash -e`) or
  `shell: bash` (`bash --noprofile --norc -eo pipefail`), `working-directory`, `env:` at
  workflow, job and step level (values are text: an empty input is an empty variable),
  `continue-on-error`, the default GITHUB_* and RUNNER_* variables, and the file commands
  GITHUB_OUTPUT (`k=v` and `k<<DELIMITER`), GITHUB_ENV, GITHUB_PATH, GITHUB_STEP_SUMMARY;
  `::add-mask::`, `::error …::`, `::warning …::` and `::notice …::` are collected;
- `uses:` of a composite action, local (`./`) or `OWNER/NAME@REF` (fetched at REF from the
  git repository `--use OWNER/NAME=PATH` names): inputs with their defaults evaluated,
  `required` checked, unknown inputs warned about, `github.action_path`, `action_ref`,
  `action_repository`, the steps with the action's own `steps` context, and `outputs`;
- expressions: `tests/support/actions_expressions.py`.

What it stands in for, and how:
- pull requests: as GitHub does, the runner makes `refs/pull/N/head` (the head commit) and
  `refs/pull/N/merge` (the head merged into the base) in `--origin`, and the job runs on
  the merge commit (GITHUB_SHA, GITHUB_REF `refs/pull/N/merge`), whatever `--sha` says;
- `actions/checkout`: clones `--origin` (a local repository, in place of GitHub's) into the
  workspace: `fetch-depth` (default 1: a shallow fetch of the commit; 0: every branch and
  tag, and a pull request's merge ref), the commit (`ref`, else GITHUB_SHA) on the branch
  of GITHUB_REF or detached, and `persist-credentials` (default true: the token is written
  into `.git/config` as `http.<server>/.extraheader`, as checkout does);
- `actions/cache`, `actions/cache/restore`, `actions/cache/save`: a folder per key under
  `--work`/actions-cache/SCOPE, SCOPE being the ref a run saves from; a restore looks in the
  run's own ref, then a pull request's base branch, then the default branch, as GitHub's
  cache does (`cache-hit`); `actions/cache` saves after the job when it succeeded and the
  key was missed, `actions/cache/save` at once; an entry is never overwritten;
- any other action: the step fails, naming it (there is no stand-in for it).
Not modelled: matrices, services, containers, `concurrency` (jobs run one at a time
anyway), environments, reusable workflows.

Usage: actions_runner_standin.py --workflow FILE --event NAME --payload FILE
  --repository OWNER/NAME --sha SHA --ref REF --origin GIT_DIR --work DIR --report FILE
  [--use OWNER/NAME=GIT_DIR]... [--env K=V]... [--server-url URL] [--api-url URL]
  [--graphql-url URL] [--oidc-url URL --oidc-request-token T] [--tokens FILE]
  [--actor NAME] [--default-permissions restricted|permissive] [--step-timeout S]
The report (JSON) has, per job: result (success, failure, skipped), permissions, token,
steps (each: path, name, id, kind, uses, outcome, exit_code, stdout, stderr, outputs,
env), annotations, masks, summary, workspace. Exit 0 when the workflow ran, whatever
its jobs did; 2 when the stand-in cannot run it.
"""

import argparse
import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import uuid

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from actions_expressions import condition, interpolate, to_text, truthy  # noqa: E402

SCOPES = [
    "actions", "attestations", "checks", "contents", "deployments", "discussions",
    "id-token", "issues", "models", "packages", "pages", "pull-requests",
    "repository-projects", "security-events", "statuses",
]
RESTRICTED = {"contents": "read", "packages": "read"}


class Unsupported(Exception):
    """The workflow uses something this stand-in does not model."""


def parse_args():
    p = argparse.ArgumentParser(description="stand-in for GitHub's Actions runner (tests only)")
    p.add_argument("--workflow", required=True)
    p.add_argument("--event", required=True)
    p.add_argument("--payload", required=True)
    p.add_argument("--repository", required=True)
    p.add_argument("--sha", required=True)
    p.add_argument("--ref", required=True)
    p.add_argument("--origin", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--report", required=True)
    p.add_argument("--use", action="append", default=[])
    p.add_argument("--env", action="append", default=[])
    p.add_argument("--server-url", default="https://github.com")
    p.add_argument("--api-url", default="https://api.github.com")
    p.add_argument("--graphql-url", default="https://api.github.com/graphql")
    p.add_argument("--oidc-url", default="")
    p.add_argument("--oidc-request-token", default="")
    p.add_argument("--tokens", default="")
    p.add_argument("--actor", default="octocat")
    p.add_argument("--default-permissions", choices=["restricted", "permissive"], default="restricted")
    p.add_argument("--step-timeout", type=float, default=900)
    return p.parse_args()


# --- triggers -------------------------------------------------------------------------

def glob_regex(pattern):
    """GitHub's filter patterns: `*` (no slash), `**`, `?`, `+`, `[...]`."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        out.append({"*": "[^/]*", "?": ".?", "+": "+"}.get(c, re.escape(c) if c not in "[]-" else c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def matches(name, patterns):
    """Whether `name` passes a filter list (`!pattern` excludes again, last match wins)."""
    result = False
    for p in patterns:
        if p.startswith("!"):
            if glob_regex(p[1:]).match(name):
                result = False
        elif glob_regex(p).match(name):
            result = True
    return result


def triggers(workflow):
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    if isinstance(on, str):
        return {on: {}}
    if isinstance(on, list):
        return {e: {} for e in on}
    return {k: (v or {}) for k, v in (on or {}).items()}


def triggered(workflow, event, payload, ref):
    on = triggers(workflow)
    if event not in on:
        return False, "the workflow has no `on: %s`" % event
    cfg = on[event]
    if event == "push":
        if ref.startswith("refs/heads/"):
            name, inc, exc, other = ref[11:], "branches", "branches-ignore", ("tags", "tags-ignore")
        else:
            name, inc, exc, other = ref[10:], "tags", "tags-ignore", ("branches", "branches-ignore")
        if inc in cfg and not matches(name, cfg[inc]):
            return False, "%s is not in on.push.%s" % (name, inc)
        if exc in cfg and matches(name, cfg[exc]):
            return False, "%s is in on.push.%s" % (name, exc)
        if inc not in cfg and exc not in cfg and any(o in cfg for o in other):
            return False, "on.push filters only %s" % "/".join(other)
    if event in ("pull_request", "pull_request_target"):
        base = payload.get("pull_request", {}).get("base", {}).get("ref", "")
        if "branches" in cfg and not matches(base, cfg["branches"]):
            return False, "base %s is not in on.%s.branches" % (base, event)
        if "branches-ignore" in cfg and matches(base, cfg["branches-ignore"]):
            return False, "base %s is in on.%s.branches-ignore" % (base, event)
        types = cfg.get("types", ["opened", "synchronize", "reopened"])
        action = payload.get("action")
        if action and action not in types:
            return False, "action %s is not in on.%s.types" % (action, event)
    return True, ""


# --- permissions ----------------------------------------------------------------------

def effective_permissions(declared, default, fork):
    if declared is None:
        declared = RESTRICTED if default == "restricted" else "write-all"
    if declared == "read-all":
        perms = {s: "read" for s in SCOPES if s != "id-token"}
    elif declared == "write-all":
        perms = {s: "write" for s in SCOPES}
    elif isinstance(declared, dict):
        unknown = set(declared) - set(SCOPES)
        if unknown:
            raise Unsupported("unknown permission scope(s): %s" % ", ".join(sorted(unknown)))
        perms = {s: declared.get(s, "none") for s in SCOPES}
    else:
        raise Unsupported("permissions: %r" % (declared,))
    perms = {s: v for s, v in perms.items() if v != "none"}
    if fork:
        perms = {s: "read" for s, v in perms.items() if s != "id-token"}
    perms["metadata"] = "read"
    return perms


# --- file and stdout commands ---------------------------------------------------------

def read_key_values(path):
    """GITHUB_OUTPUT / GITHUB_ENV: `k=v` lines and `k<<DELIMITER` blocks."""
    out = {}
    if not os.path.exists(path):
        return out
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip():
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delim = line.split("<<", 1)
            value = []
            while i < len(lines) and lines[i] != delim:
                value.append(lines[i])
                i += 1
            if i >= len(lines):
                raise Unsupported("%s: no closing delimiter %s for %s" % (path, delim, key))
            i += 1
            out[key] = "\n".join(value)
        elif "=" in line:
            key, value = line.split("=", 1)
            out[key] = value
        else:
            raise Unsupported("%s: invalid line %r" % (path, line))
    return out


COMMAND = re.compile(r"^::([a-z-]+)(?: ([^:]*))?::(.*)$")


def workflow_commands(stdout, job):
    for line in stdout.splitlines():
        m = COMMAND.match(line)
        if not m:
            continue
        name, props, message = m.group(1), m.group(2) or "", m.group(3)
        if name == "add-mask":
            job["masks"].append(message)
        elif name in ("error", "warning", "notice"):
            fields = dict(p.split("=", 1) for p in props.split(",") if "=" in p)
            job["annotations"].append({"level": name, "properties": fields, "message": message})


# --- the runner ------------------------------------------------------------------------

class Job:
    def __init__(self, runner, job_id, spec, workflow):
        self.runner = runner
        self.id = job_id
        self.spec = spec
        self.workflow = workflow
        self.dir = os.path.join(runner.args.work, "jobs", job_id)
        shutil.rmtree(self.dir, ignore_errors=True)  # every job starts on a fresh machine
        for d in ("workspace", "home", "temp", "commands", "tool-cache"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        self.workspace = os.path.join(self.dir, "workspace")
        self.status = "success"
        self.path_additions = []
        self.env_additions = {}
        self.post = []
        self.report = {
            "result": None, "permissions": {}, "token": None, "id_token": False,
            "steps": [], "annotations": [], "masks": [], "summary": "",
            "workspace": self.workspace, "warnings": [],
        }

    # contexts

    def github(self, extra=None):
        r = self.runner
        g = dict(r.github)
        g.update({"workspace": self.workspace, "job": self.id, "token": self.token, "action_path": "",
                  "action_ref": "", "action_repository": "", "action": ""})
        g.update(extra or {})
        return g

    def runner_context(self):
        return {"os": "Linux", "arch": self.runner.arch, "name": "stand-in",
                "temp": os.path.join(self.dir, "temp"), "tool_cache": os.path.join(self.dir, "tool-cache")}

    def base_env(self):
        r = self.runner
        env = dict(r.machine_env)
        env["HOME"] = os.path.join(self.dir, "home")
        env.update({
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_ACTOR": r.args.actor,
            "GITHUB_TRIGGERING_ACTOR": r.args.actor,
            "GITHUB_API_URL": r.args.api_url,
            "GITHUB_GRAPHQL_URL": r.args.graphql_url,
            "GITHUB_SERVER_URL": r.args.server_url,
            "GITHUB_EVENT_NAME": r.args.event,
            "GITHUB_EVENT_PATH": r.event_path,
            "GITHUB_SHA": r.args.sha,
            "GITHUB_REF": r.args.ref,
            "GITHUB_REF_NAME": r.github["ref_name"],
            "GITHUB_REF_TYPE": r.github["ref_type"],
            "GITHUB_HEAD_REF": r.github["head_ref"],
            "GITHUB_BASE_REF": r.github["base_ref"],
            "GITHUB_REPOSITORY": r.args.repository,
            "GITHUB_REPOSITORY_OWNER": r.github["repository_owner"],
            "GITHUB_RUN_ID": "1000", "GITHUB_RUN_NUMBER": "1", "GITHUB_RUN_ATTEMPT": "1",
            "GITHUB_RETENTION_DAYS": "90",
            "GITHUB_WORKFLOW": self.workflow.get("name", os.path.basename(r.args.workflow)),
            "GITHUB_WORKFLOW_REF": "%s/.github/workflows/%s@%s" % (
                r.args.repository, os.path.basename(r.args.workflow), r.args.ref),
            "GITHUB_JOB": self.id,
            "GITHUB_WORKSPACE": self.workspace,
            "RUNNER_OS": "Linux",
            "RUNNER_ARCH": r.arch,
            "RUNNER_NAME": "stand-in",
            "RUNNER_TEMP": os.path.join(self.dir, "temp"),
            "RUNNER_TOOL_CACHE": os.path.join(self.dir, "tool-cache"),
        })
        if self.report["id_token"]:
            env["ACTIONS_ID_TOKEN_REQUEST_URL"] = r.args.oidc_url
            env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = r.args.oidc_request_token
        return env

    def contexts(self, env, steps, inputs=None, github_extra=None):
        return {
            "github": self.github(github_extra),
            "env": env,
            "inputs": inputs if inputs is not None else self.runner.workflow_inputs,
            "steps": steps,
            "runner": self.runner_context(),
            "job": {"status": self.status},
            "secrets": {"GITHUB_TOKEN": self.token},
            "vars": {},
            "needs": self.runner.needs_context(self.spec),
            "matrix": {},
            "strategy": {},
        }

    # running

    def run(self):
        spec = self.spec
        for unsupported in ("strategy", "services", "container", "uses"):
            if unsupported in spec:
                raise Unsupported("job %s: `%s` has no stand-in" % (self.id, unsupported))
        fork = bool(self.runner.payload.get("pull_request", {}).get("head", {}).get("repo", {}).get("fork"))
        declared = spec.get("permissions", self.workflow.get("permissions"))
        perms = effective_permissions(declared, self.runner.args.default_permissions, fork)
        self.report["permissions"] = perms
        self.token = "ghs_standin_%s_%s" % (re.sub(r"[^A-Za-z0-9]", "", self.id), secrets.token_hex(12))
        self.report["token"] = self.token
        self.report["id_token"] = perms.get("id-token") == "write" and bool(self.runner.args.oidc_url)
        self.runner.record_token(self.token, perms, fork)

        ctx = self.contexts({}, {})
        ctx.pop("env")
        ctx.pop("steps")
        ctx.pop("runner")
        if not condition(spec.get("if"), dict(ctx, env={}), self.runner.needs_status(spec)):
            self.report["result"] = "skipped"
            return self.report
        wf_env = {k: to_text(interpolate(v, ctx)) for k, v in (self.workflow.get("env") or {}).items()}
        job_env = {k: to_text(interpolate(v, dict(ctx, env=wf_env))) for k, v in (spec.get("env") or {}).items()}
        self.env = dict(wf_env, **job_env)
        steps_ctx = {}
        for i, step in enumerate(spec.get("steps") or []):
            self.step(step, "%d" % (i + 1), steps_ctx, self.env, None)
        for label, fn in reversed(self.post):
            try:
                fn()
            except Exception as e:  # a post step failing fails the job, as on GitHub
                self.report["warnings"].append("post %s: %s" % (label, e))
                self.status = "failure"
        self.report["result"] = self.status
        self.report["outputs"] = {
            k: to_text(interpolate(v, self.contexts(self.env, steps_ctx)))
            for k, v in (spec.get("outputs") or {}).items()
        }
        return self.report

    def step(self, step, path, steps_ctx, env_chain, action):
        """Runs one step; `action` is the composite action it belongs to, if any."""
        sid = step.get("id") or "__%s" % path.replace("/", "_")
        record = {"path": path, "name": step.get("name"), "id": step.get("id"),
                  "kind": "run" if "run" in step else "uses", "uses": step.get("uses"),
                  "outcome": None, "exit_code": None, "stdout": "", "stderr": "", "outputs": {}, "env": {}}
        self.report["steps"].append(record)
        inputs = action["inputs"] if action else None
        github_extra = action["github"] if action else None
        env_for_ctx = dict(env_chain, **self.env_additions)
        ctx = self.contexts(env_for_ctx, steps_ctx, inputs, github_extra)
        if not condition(step.get("if"), ctx, self.status):
            record["outcome"] = "skipped"
            steps_ctx[sid] = {"outputs": {}, "outcome": "skipped", "conclusion": "skipped"}
            return
        step_env = {k: to_text(interpolate(v, ctx)) for k, v in (step.get("env") or {}).items()}
        outputs, ok = {}, True
        try:
            if "run" in step:
                if action and "shell" not in step:
                    raise Unsupported("%s: a composite action's run step needs `shell:`" % path)
                env = self.base_env()
                env.update(env_chain)
                env.update(self.env_additions)
                env.update(step_env)
                record["env"] = step_env
                if action:
                    # GITHUB_ACTION_REF and GITHUB_ACTION_REPOSITORY stay unset in a composite
                    # action's steps on GitHub (actions/runner#2473); the expressions work.
                    env["GITHUB_ACTION_PATH"] = action["github"]["action_path"]
                script = interpolate(step["run"], ctx)
                cwd = self.workspace
                if step.get("working-directory"):
                    cwd = os.path.join(self.workspace, interpolate(step["working-directory"], ctx))
                ok, outputs = self.run_script(script, step.get("shell"), env, cwd, record)
            else:
                with_ = {k: interpolate(v, ctx) for k, v in (step.get("with") or {}).items()}
                env = dict(env_chain)
                env.update(step_env)
                ok, outputs = self.uses(interpolate(step["uses"], ctx), with_, env, path, action, record)
        except Unsupported:
            raise
        except subprocess.TimeoutExpired as e:
            record["stderr"] += "\nthe step ran longer than %ss and was stopped" % e.timeout
            ok = False
        record["outputs"] = outputs
        record["outcome"] = "success" if ok else "failure"
        continue_on_error = truthy(interpolate(step.get("continue-on-error", False), ctx))
        conclusion = "success" if ok or continue_on_error else "failure"
        steps_ctx[sid] = {"outputs": outputs, "outcome": record["outcome"], "conclusion": conclusion}
        if conclusion == "failure":
            self.status = "failure"

    def command_file(self, name):
        return os.path.join(self.dir, "commands", "%s_%s" % (name, uuid.uuid4().hex))

    def run_script(self, script, shell, env, cwd, record):
        files = {k: self.command_file(k) for k in ("output", "env", "path", "summary")}
        for f in files.values():
            open(f, "w").close()
        env = dict(env)
        env.update({"GITHUB_OUTPUT": files["output"], "GITHUB_ENV": files["env"],
                    "GITHUB_PATH": files["path"], "GITHUB_STEP_SUMMARY": files["summary"]})
        if self.path_additions:
            env["PATH"] = ":".join(list(reversed(self.path_additions)) + [env.get("PATH", "")])
        script_file = os.path.join(self.dir, "temp", "step_%s.sh" % uuid.uuid4().hex)
        with open(script_file, "w") as f:
            f.write(script)
        if shell is None:
            cmd = ["bash", "-e", script_file]
        elif shell == "bash":
            cmd = ["bash", "--noprofile", "--norc", "-eo", "pipefail", script_file]
        elif shell == "sh":
            cmd = ["sh", "-e", script_file]
        elif shell == "python":
            cmd = ["python3", script_file]
        elif "{0}" in shell:
            cmd = shell.replace("{0}", script_file).split()
        else:
            raise Unsupported("shell %r" % shell)
        proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True,
                              timeout=self.runner.args.step_timeout)
        record["exit_code"] = proc.returncode
        record["stdout"] += proc.stdout
        record["stderr"] += proc.stderr
        workflow_commands(proc.stdout, self.report)
        outputs = read_key_values(files["output"])
        self.env_additions.update(read_key_values(files["env"]))
        for line in open(files["path"]).read().splitlines():
            if line.strip():
                self.path_additions.append(line.strip())
        self.report["summary"] += open(files["summary"]).read()
        return proc.returncode == 0, outputs

    def uses(self, uses, with_, env, path, parent, record):
        if uses.startswith("docker://"):
            raise Unsupported("%s: docker actions have no stand-in" % uses)
        name, _, ref = uses.partition("@")
        base = re.sub(r"/[^/]*$", "", name) if name.count("/") > 1 else name
        if base == "actions/checkout":
            return self.checkout(with_, record)
        if name in ("actions/cache", "actions/cache/restore", "actions/cache/save"):
            return self.cache(name.rpartition("/")[2], with_, record)
        if name.startswith("./"):
            folder = os.path.join(self.workspace, name[2:])
            repo, ref = "", ""
        else:
            folder = self.runner.fetch_action(name, ref)
            repo = name
        return self.composite(folder, repo, ref, with_, env, path, record)

    def composite(self, folder, repo, ref, with_, env, path, record):
        for f in ("action.yml", "action.yaml"):
            if os.path.exists(os.path.join(folder, f)):
                definition = yaml.safe_load(open(os.path.join(folder, f)))
                break
        else:
            record["stderr"] = "no action.yml in %s" % folder
            return False, {}
        runs = definition.get("runs") or {}
        if runs.get("using") != "composite":
            raise Unsupported("%s: only composite actions have a stand-in" % folder)
        declared = definition.get("inputs") or {}
        for k in with_:
            if k not in declared:
                self.report["warnings"].append("Unexpected input(s) '%s', valid inputs are %s" % (k, sorted(declared)))
        github_extra = {"action_path": folder, "action_ref": ref, "action_repository": repo}
        default_ctx = self.contexts(dict(env, **self.env_additions), {}, {}, github_extra)
        inputs = {}
        for k, spec in declared.items():
            spec = spec or {}
            if k in with_:
                inputs[k] = to_text(with_[k])
            elif "default" in spec:
                inputs[k] = to_text(interpolate(spec["default"], default_ctx))
            elif spec.get("required"):
                record["stderr"] = "Input required and not supplied: %s" % k
                return False, {}
            else:
                inputs[k] = ""
        action = {"inputs": inputs, "github": github_extra}
        steps_ctx = {}
        for i, step in enumerate(runs.get("steps") or []):
            self.step(step, "%s/%d" % (path, i + 1), steps_ctx, env, action)
        ctx = self.contexts(dict(env, **self.env_additions), steps_ctx, inputs, github_extra)
        outputs = {k: to_text(interpolate((v or {}).get("value"), ctx))
                   for k, v in (definition.get("outputs") or {}).items()}
        ok = all(s.get("conclusion") != "failure" for s in steps_ctx.values())
        return ok, outputs

    # stand-ins for actions

    def git(self, *args, cwd=None, check=True):
        proc = subprocess.run(["git"] + list(args), cwd=cwd or self.workspace, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise RuntimeError("git %s: %s" % (" ".join(args), proc.stderr.strip()))
        return proc

    def checkout(self, with_, record):
        r = self.runner
        if with_.get("repository") not in (None, "", r.args.repository):
            raise Unsupported("actions/checkout of another repository")
        depth = int(to_text(with_.get("fetch-depth", 1)) or 1)
        persist = to_text(with_.get("persist-credentials", True)).lower() != "false"
        token = to_text(with_.get("token") or self.token)
        dest = os.path.join(self.workspace, to_text(with_.get("path", "")))
        os.makedirs(dest, exist_ok=True)
        origin = os.path.abspath(r.args.origin)
        ref = to_text(with_.get("ref", ""))
        sha = r.args.sha
        if ref:
            sha = self.git("rev-parse", ref + "^{commit}", cwd=origin).stdout.strip()
        try:
            self.git("init", "-q", dest, cwd=dest)
            self.git("remote", "add", "origin", "file://" + origin, cwd=dest)
            if persist:
                header = base64.b64encode(("x-access-token:" + token).encode()).decode()
                self.git("config", "--local", "http.%s/.extraheader" % r.args.server_url,
                         "AUTHORIZATION: basic " + header, cwd=dest)
            upload = "git -c uploadpack.allowAnySHA1InWant=true upload-pack"
            if depth == 0:
                refspecs = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]
                if r.args.ref.startswith("refs/pull/"):
                    refspecs.append("+%s:refs/remotes/pull/%s" % (r.args.ref, r.args.ref[len("refs/pull/"):]))
                self.git("fetch", "-q", "--prune", "--no-recurse-submodules", "--upload-pack", upload, "origin",
                         *refspecs, cwd=dest)
                if self.git("cat-file", "-e", sha + "^{commit}", cwd=dest, check=False).returncode != 0:
                    self.git("fetch", "-q", "--upload-pack", upload, "origin", sha, cwd=dest)
            else:
                self.git("fetch", "-q", "--no-tags", "--depth=%d" % depth, "--upload-pack", upload,
                         "origin", sha, cwd=dest)
            git_ref = r.args.ref
            if git_ref.startswith("refs/heads/") and not ref and r.args.event not in ("pull_request", "pull_request_target"):
                self.git("checkout", "-q", "--force", "-B", git_ref[11:], sha, cwd=dest)
            else:
                self.git("checkout", "-q", "--force", "--detach", sha, cwd=dest)
        except RuntimeError as e:
            record["stderr"] = str(e)
            return False, {}
        record["stdout"] = "checked out %s (fetch-depth %d, persist-credentials %s)\n" % (sha, depth, str(persist).lower())
        return True, {"ref": r.args.ref, "commit": sha}

    def cache(self, kind, with_, record):
        """`kind`: cache (restore now, save after the job), restore, or save."""
        key = to_text(with_.get("key", ""))
        paths = [os.path.expanduser(p.strip()) for p in to_text(with_.get("path", "")).splitlines() if p.strip()]
        if not key or not paths:
            record["stderr"] = "actions/cache needs `key` and `path`"
            return False, {}
        home = os.path.join(self.dir, "home")
        paths = [p.replace("~", home, 1) if p.startswith("~") else p for p in paths]
        own = self.runner.cache_entry(self.runner.args.ref, key)

        def save():
            if os.path.isdir(own):
                record["stdout"] += "Cache entry %s exists already, not saving\n" % key
                return
            for i, p in enumerate(paths):
                if os.path.isdir(p):
                    shutil.copytree(p, os.path.join(own, str(i)), symlinks=True)
            record["stdout"] += "Cache saved with key: %s\n" % key

        if kind == "save":
            save()
            return True, {}
        found = next((e for e in self.runner.cache_scopes(key) if os.path.isdir(e)), None)
        if found:
            for i, p in enumerate(paths):
                src = os.path.join(found, str(i))
                if os.path.isdir(src):
                    shutil.copytree(src, p, symlinks=True, dirs_exist_ok=True)
            record["stdout"] = "Cache restored from key: %s\n" % key
        else:
            record["stdout"] = "Cache not found for input keys: %s\n" % key
            if kind == "cache":
                self.post.append(("actions/cache", lambda: self.status == "success" and save()))
        outputs = {"cache-hit": "true" if found else "false"}
        if kind == "restore":
            outputs["cache-primary-key"] = key
            outputs["cache-matched-key"] = key if found else ""
        return True, outputs


class Runner:
    def __init__(self, args):
        self.args = args
        self.payload = json.load(open(args.payload))
        self.event_path = os.path.abspath(args.payload)
        self.arch = {"x86_64": "X64", "aarch64": "ARM64", "arm64": "ARM64"}.get(os.uname().machine, "X64")
        self.machine_env = dict(kv.split("=", 1) for kv in args.env)
        self.machine_env.setdefault("PATH", os.environ.get("PATH", "/usr/bin:/bin"))
        ref = args.ref
        owner = args.repository.split("/")[0]
        pr = self.payload.get("pull_request") or {}
        self.github = {
            "event_name": args.event, "event": self.payload, "sha": args.sha, "ref": ref,
            "ref_name": ref.split("/", 2)[2] if ref.count("/") >= 2 else ref,
            "ref_type": "tag" if ref.startswith("refs/tags/") else "branch",
            "head_ref": (pr.get("head") or {}).get("ref", ""), "base_ref": (pr.get("base") or {}).get("ref", ""),
            "repository": args.repository, "repository_owner": owner, "actor": args.actor,
            "triggering_actor": args.actor, "server_url": args.server_url, "api_url": args.api_url,
            "graphql_url": args.graphql_url, "run_id": "1000", "run_number": "1", "run_attempt": "1",
            "workflow": "", "retention_days": "90",
        }
        self.jobs = {}
        self.workflow_inputs = {}
        self.actions = dict(u.split("=", 1) for u in args.use)

    def cache_entry(self, ref, key):
        scope = re.sub(r"[^A-Za-z0-9._-]", "_", ref)
        return os.path.join(self.args.work, "actions-cache", scope, re.sub(r"[^A-Za-z0-9._-]", "_", key))

    def cache_scopes(self, key):
        """Where a run may restore `key` from: its own ref, a pull request's base, the
        default branch."""
        refs = [self.args.ref]
        base = self.github["base_ref"]
        if base:
            refs.append("refs/heads/" + base)
        default = (self.payload.get("repository") or {}).get("default_branch", "main")
        refs.append("refs/heads/" + default)
        return [self.cache_entry(r, key) for r in refs]

    def pull_request_refs(self):
        """As GitHub makes them for a pull request: refs/pull/N/head and refs/pull/N/merge
        in the repository; the job runs on the merge commit."""
        pr = self.payload.get("pull_request") or {}
        number, base, head = pr.get("number"), (pr.get("base") or {}).get("sha"), (pr.get("head") or {}).get("sha")
        if not (number and base and head):
            raise Unsupported("a pull_request payload needs number, base.sha and head.sha")
        origin = self.args.origin

        def git(*a):
            p = subprocess.run(["git", "-C", origin] + list(a), capture_output=True, text=True,
                               env=dict(os.environ, GIT_AUTHOR_NAME="GitHub", GIT_AUTHOR_EMAIL="noreply@github.com",
                                        GIT_COMMITTER_NAME="GitHub", GIT_COMMITTER_EMAIL="noreply@github.com",
                                        GIT_AUTHOR_DATE="2026-01-01T00:00:00Z", GIT_COMMITTER_DATE="2026-01-01T00:00:00Z"))
            if p.returncode != 0:
                raise Unsupported("git %s: %s" % (" ".join(a), p.stderr.strip() or p.stdout.strip()))
            return p.stdout.strip()

        tree = git("merge-tree", "--write-tree", base, head).splitlines()[0]
        merge = git("commit-tree", tree, "-p", base, "-p", head, "-m", "Merge %s into %s" % (head, base))
        git("update-ref", "refs/pull/%d/head" % number, head)
        git("update-ref", "refs/pull/%d/merge" % number, merge)
        self.args.sha = merge
        self.args.ref = "refs/pull/%d/merge" % number
        self.github.update({"sha": merge, "ref": self.args.ref, "ref_name": "%d/merge" % number})

    def record_token(self, token, perms, fork):
        if not self.args.tokens:
            return
        tokens = {}
        if os.path.exists(self.args.tokens):
            tokens = json.load(open(self.args.tokens))
        tokens[token] = {"permissions": perms, "fork": fork, "repository": self.args.repository}
        tmp = self.args.tokens + ".tmp"
        json.dump(tokens, open(tmp, "w"))
        os.replace(tmp, self.args.tokens)

    def needs_list(self, spec):
        n = spec.get("needs") or []
        return [n] if isinstance(n, str) else n

    def needs_context(self, spec):
        return {n: {"result": self.jobs.get(n, {}).get("result"), "outputs": self.jobs.get(n, {}).get("outputs", {})}
                for n in self.needs_list(spec)}

    def needs_status(self, spec):
        results = [self.jobs.get(n, {}).get("result") for n in self.needs_list(spec)]
        return "success" if all(r == "success" for r in results) else "failure"

    def fetch_action(self, name, ref):
        if name not in self.actions:
            raise Unsupported("`uses: %s@%s` has no stand-in and no --use %s=GIT_DIR" % (name, ref, name))
        dest = os.path.join(self.args.work, "_actions", name, ref)
        if not os.path.isdir(dest):
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            clone = subprocess.run(["git", "clone", "-q", self.actions[name], dest], capture_output=True, text=True)
            if clone.returncode != 0:
                raise Unsupported("cannot fetch %s: %s" % (name, clone.stderr.strip()))
            co = subprocess.run(["git", "-C", dest, "checkout", "-q", "--detach", ref], capture_output=True, text=True)
            if co.returncode != 0:
                shutil.rmtree(dest)
                raise RuntimeError("Unable to resolve action `%s@%s`, unable to find version `%s`" % (name, ref, ref))
        return dest

    def run(self):
        shutil.rmtree(os.path.join(self.args.work, "_actions"), ignore_errors=True)
        workflow = yaml.safe_load(open(self.args.workflow))
        report = {"triggered": False, "reason": "", "jobs": {}}
        ok, why = triggered(workflow, self.args.event, self.payload, self.args.ref)
        report["triggered"], report["reason"] = ok, why
        if ok and self.args.event in ("pull_request", "pull_request_target"):
            self.pull_request_refs()
        report["sha"], report["ref"] = self.args.sha, self.args.ref
        if ok and self.args.event == "workflow_dispatch":
            declared = (triggers(workflow).get("workflow_dispatch") or {}).get("inputs") or {}
            given = self.payload.get("inputs") or {}
            for k, spec in declared.items():
                v = given.get(k, (spec or {}).get("default", ""))
                if (spec or {}).get("type") == "boolean":
                    v = v is True or str(v).lower() == "true"
                self.workflow_inputs[k] = v
        if ok:
            pending = dict(workflow.get("jobs") or {})
            while pending:
                ready = [j for j, s in pending.items() if all(n in self.jobs for n in self.needs_list(s))]
                if not ready:
                    raise Unsupported("jobs with circular or unknown needs: %s" % ", ".join(pending))
                for j in ready:
                    spec = pending.pop(j)
                    self.jobs[j] = Job(self, j, spec, workflow).run()
        report["jobs"] = self.jobs
        return report


def main():
    args = parse_args()
    try:
        report = Runner(args).run()
    except Unsupported as e:
        print("actions runner stand-in: %s" % e, file=sys.stderr)
        return 2
    with open(args.report, "w") as f:
        json.dump(report, f, indent=2)
    for name, job in report["jobs"].items():
        print("job %s: %s" % (name, job["result"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
