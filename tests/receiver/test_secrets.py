"""Which secret may sign a delivery, when several entries cover its repository."""

import textwrap

import pytest

from runner.config.pipelines_file import parse_pipelines
from runner.receiver.secrets import accepted_secrets, secret_fits

ENTRIES = """\
    repositories:
      acme/*:
        secret_env: ACME_SECRET
        pipelines: {lint: {on: push, steps: [{name: s, run: make lint}]}}
      acme/shop:
        pipelines: {test: {on: push, steps: [{name: s, run: make test}]}}
      acme/vault:
        secret_env: VAULT_SECRET
        pipelines: {test: {on: push, steps: [{name: s, run: make test}]}}
      other/*:
        pipelines: {test: {on: push, steps: [{name: s, run: make test}]}}
    """


@pytest.fixture
def config(settings):
    settings.WEBHOOK_SECRET = "global"
    environ = {"ACME_SECRET": "acme's", "VAULT_SECRET": "the vault's"}
    return parse_pipelines(textwrap.dedent(ENTRIES), "pipelines.yaml", environ)


def test_an_organisation_entrys_secret_signs_for_a_repository_entry_naming_none(config):
    assert secret_fits(config, "acme's", "acme/shop")
    assert not secret_fits(config, "global", "acme/shop")


def test_the_most_specific_entry_naming_a_secret_decides(config):
    assert secret_fits(config, "the vault's", "acme/vault")
    assert not secret_fits(config, "acme's", "acme/vault")


def test_a_repository_no_covering_entry_names_a_secret_for_takes_webhook_secret(config):
    assert secret_fits(config, "global", "other/thing")
    assert secret_fits(config, "global", "nobody/covers-this")
    assert not secret_fits(config, "acme's", "other/thing")


def test_every_configured_secret_is_accepted_once(config):
    assert accepted_secrets(config) == ["global", "acme's", "the vault's"]
