"""The environment a step runs with: nothing of the server's but what is named. Pure."""

from collections.abc import Iterable, Mapping

from runner.config.github import Event, short_ref
from runner.config.pipelines import Input

# The only variables taken from hookrunner's own environment, besides named secrets.
INHERITED = ("PATH", "HOME", "LANG")
DEFAULTS = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
# git may never ask a question: nobody is there to answer it.
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_SSH_COMMAND": "ssh -o BatchMode=yes"}


def github_variables(
    event: Event, run_id: int, sha: str, ref: str, event_path: str, workspace: str
) -> dict[str, str]:
    """GitHub Actions' names for what the delivery says, plus the run's own id."""
    is_pull_request = event.name == "pull_request"
    return {
        "GITHUB_EVENT_NAME": event.name,
        "GITHUB_REPOSITORY": event.repository,
        "GITHUB_SHA": sha,
        "GITHUB_REF": ref,
        "GITHUB_REF_NAME": short_ref(ref),
        "GITHUB_HEAD_REF": event.head_ref if is_pull_request else "",
        "GITHUB_BASE_REF": event.base_ref if is_pull_request else "",
        "GITHUB_ACTOR": event.sender,
        "GITHUB_EVENT_PATH": event_path,
        "GITHUB_WORKSPACE": workspace,
        "HOOKRUNNER_RUN_ID": str(run_id),
    }


def deployment_variables(
    environment: str, inputs: Iterable[Input], values: Mapping[str, str]
) -> dict[str, str]:
    """What a deployment's steps are told: its environment (HOOKRUNNER_ENVIRONMENT) and
    the inputs a person gave its manual run (INPUT_<NAME>). Set by hookrunner, like
    GitHub's variables, so a pipeline's env cannot pass off another value as the input."""
    variables = {entry.variable: values[entry.name] for entry in inputs if entry.name in values}
    if environment:
        variables["HOOKRUNNER_ENVIRONMENT"] = environment
    return variables


def step_environment(
    server: Mapping[str, str],
    pipeline_env: Mapping[str, str],
    step_env: Mapping[str, str],
    secrets: Mapping[str, str],
    github: Mapping[str, str],
) -> dict[str, str]:
    """Later sources win; GitHub's variables come last so nothing can forge them."""
    base = {name: server.get(name) or DEFAULTS.get(name, "") for name in INHERITED}
    return {**base, **pipeline_env, **step_env, **secrets, **github}
