"""The README's configuration table and API examples agree with the code and the OpenAPI document."""

import json
import re
import shlex
from pathlib import Path

import jsonschema
import pytest

from app.config import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def sections(name: str) -> list[str]:
    """The text of every part of the README marked ``<!-- NAME:start -->`` ... ``:end -->``."""
    return [
        part.split(f"<!-- {name}:end -->")[0] for part in README.split(f"<!-- {name}:start -->")[1:]
    ]


def section(name: str) -> str:
    (text,) = sections(name)
    return text


def documented_variables() -> set[str]:
    names = set()
    for line in section("config-table").splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", first_cell))
    return names


def test_every_configuration_variable_is_documented_and_every_documented_one_exists():
    in_code = {name.upper() for name in Settings.model_fields}
    documented = documented_variables()
    assert documented == in_code, {
        "documented, not in code": sorted(documented - in_code),
        "in code, not documented": sorted(in_code - documented),
    }


def test_documented_defaults_match_the_code():
    defaults = {}
    for line in section("config-table").splitlines():
        cells = [cell.strip() for cell in line.split("|")[1:-1]]
        if len(cells) == 3 and cells[0].startswith("`") and cells[1].startswith("`"):
            value = re.match(r"`([^`]*)`", cells[1]).group(1)
            for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]):
                defaults[name] = value
    for name, value in defaults.items():
        field = Settings.model_fields[name.lower()]
        default = field.default
        if isinstance(default, Path):
            assert Path(value) == default, name
            continue
        if isinstance(default, tuple):
            default = ",".join(f"{v:g}" for v in default)
        elif isinstance(default, float):
            default = f"{default:g}"
        assert str(default).lower() == value.lower(), name


def curl_commands(parts: list[str] | None = None) -> list[list[str]]:
    """Every curl command of the ```sh blocks in ``parts`` (default: every api-examples part of the
    README: Using the API, Endpoints), in order."""
    commands: list[list[str]] = []
    for text in sections("api-examples") if parts is None else parts:
        for block in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL):
            current: list[str] | None = None  # what precedes a block's first curl is not one
            for token in shlex.split(block, comments=True):
                if token == "curl":
                    current = [token]
                    commands.append(current)
                elif current is not None:
                    current.append(token)
    return commands


def parse(command: list[str]) -> tuple[str, str, dict | None]:
    method, body, url = "GET", None, None
    args = iter(command[1:])
    for arg in args:
        if arg == "-X":
            method = next(args)
        elif arg == "-d":
            body = json.loads(next(args))
            method = method if method != "GET" else "POST"
        elif arg == "-H":
            next(args)
        elif arg.startswith("$BRIDGE"):
            url = arg.removeprefix("$BRIDGE")
    assert url is not None
    return method, url, body


@pytest.fixture(scope="module")
def document():
    from app.api.openapi import build_document

    return build_document()


def resolve(document, item: dict) -> dict:
    """Follow a local ``$ref`` (``#/components/...``)."""
    if "$ref" not in item:
        return item
    node = document
    for part in item["$ref"].removeprefix("#/").split("/"):
        node = node[part]
    return node


def match_path(document, url: str) -> tuple[str, dict]:
    path = url.split("?")[0]
    for template, item in document["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", r"[^/]+", template) + "$"
        if re.match(pattern, path):
            return template, item
    raise AssertionError(f"{path} is not in /openapi.json")


def test_the_readme_shows_an_example_of_each_api_operation(document):
    shown = {(parse(c)[0], match_path(document, parse(c)[1])[0]) for c in curl_commands()}
    expected = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        if path.startswith("/api/")
        for method in item
        if method in ("get", "post", "delete", "patch")
    }
    assert expected <= shown, sorted(expected - shown)


def test_every_curl_example_is_valid_against_the_openapi_document(document):
    for command in curl_commands():
        method, url, body = parse(command)
        template, item = match_path(document, url)
        operation = item.get(method.lower())
        assert operation, f"{method} {template} is not documented"
        query = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&")) if "?" in url else {}
        parameters = [resolve(document, p) for p in operation.get("parameters", [])]
        names = {p["name"] for p in parameters if p["in"] == "query"}
        assert set(query) <= names, f"{url}: unknown query parameters {set(query) - names}"
        if body is not None:
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            jsonschema.validate(
                body, {**schema, "components": document["components"]},
                cls=jsonschema.Draft202012Validator,
            )  # fmt: skip


def test_the_endpoint_examples_run_in_order_against_the_app(client, auth_headers):
    """The Endpoints part's examples, one after the other as a reader would: each succeeds."""
    endpoints_part = next(part for part in sections("api-examples") if "/api/v1/endpoints" in part)
    answers = []
    for command in curl_commands([endpoints_part]):
        method, url, body = parse(command)
        response = client.open(url, method=method, json=body, headers=auth_headers)
        assert response.status_code in (200, 201, 202, 204), (method, url, response.get_json())
        answers.append(response.get_json(silent=True))
    assert answers[0]["secret"].startswith("whsec_")
    assert answers[2]["targets"][0]["endpoint"] == "cms"
    assert [item["name"] for item in answers[3]["items"]] == ["cms", "newsroom"]
    assert len(answers) == 9
