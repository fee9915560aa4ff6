"""Registry readiness: server.json, the package metadata and the README agree."""

from __future__ import annotations

import json
import re
import tomllib

from helpers import REPO

from mcp_rag import __version__
from mcp_rag.settings import Settings

SERVER = json.loads((REPO / "server.json").read_text())
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_server_json_validates_against_the_official_schema():
    import jsonschema

    schema = json.loads((REPO / "tests" / "schemas" / "server.schema.json").read_text())
    assert SERVER["$schema"] == schema["$id"]  # validated against the schema it names
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(SERVER), key=str)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_schema_catches_what_the_registry_refuses():
    import jsonschema

    schema = json.loads((REPO / "tests" / "schemas" / "server.schema.json").read_text())
    bad = {**SERVER, "description": "x" * 101}
    assert not jsonschema.Draft7Validator(schema).is_valid(bad)
    bad = {**SERVER, "name": "no-slash"}
    assert not jsonschema.Draft7Validator(schema).is_valid(bad)


def test_server_json_keeps_the_registry_limits():
    assert re.fullmatch(r"[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+", SERVER["name"])
    assert 1 <= len(SERVER["description"]) <= 100
    assert SERVER["repository"]["url"].startswith("https://") and SERVER["repository"]["source"]
    for pkg in SERVER["packages"]:
        assert pkg["version"] != "latest" and pkg["transport"] == {"type": "stdio"}
        for var in pkg.get("environmentVariables", []):
            assert var["format"] in ("string", "number", "boolean", "filepath")


def test_one_name_and_one_version_everywhere():
    pkg = SERVER["packages"][0]
    assert pkg["registryType"] == "pypi" and pkg["identifier"] == PROJECT["name"]
    assert SERVER["version"] == pkg["version"] == PROJECT["version"] == __version__
    readme = (REPO / "README.md").read_text()
    assert f"mcp-name: {SERVER['name']}" in readme  # the registry's PyPI ownership check
    assert f"uvx {PROJECT['name']}" in readme
    assert PROJECT["name"] in PROJECT["scripts"]  # `uvx mcp-rag-server` finds its command


def test_the_bundle_is_the_second_package_of_this_version():
    (bundle,) = [p for p in SERVER["packages"] if p["registryType"] == "mcpb"]
    manifest = json.loads((REPO / "bundle" / "manifest.json").read_text())
    assert bundle["version"] == manifest["version"] == PROJECT["version"]
    # what `python bundle/build.py --release` writes; the release attaches that file
    assert bundle["identifier"] == (f"https://github.com/mcp-rag/mcp-rag/releases/download/"
                                    f"v{PROJECT['version']}/mcp-rag-{PROJECT['version']}.mcpb")
    assert re.fullmatch(r"[0-9a-f]{64}", bundle["fileSha256"])


def test_every_documented_variable_is_a_setting():
    fields = set(Settings.model_fields)
    for var in SERVER["packages"][0]["environmentVariables"]:
        assert var["name"].removeprefix("MCP_RAG_").lower() in fields | {"log_level"}, var


def test_the_metadata_is_complete():
    assert PROJECT["license"] == "Apache-2.0" and (REPO / "LICENSE").read_text().startswith(
        "\n                                 Apache License")
    assert PROJECT["authors"] and PROJECT["keywords"] and PROJECT["classifiers"]
    assert {"Homepage", "Repository", "Changelog"} <= set(PROJECT["urls"])
    assert f"## {__version__}" in (REPO / "CHANGELOG.md").read_text()
