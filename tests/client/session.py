"""A short session with a client generated from rota's OpenAPI document.

Run by `tests/it/client.rs` against a live `rota serve`:

    python3 tests/client/session.py BASE_URL TOKEN WORK_DIR

It reads the document without a token, has it checked by an independent validator
(openapi-spec-validator), generates a Python client from it with an independent generator
(openapi-python-client), and with that client creates an agent, signs her in, creates a
conversation, accepts it and reads it back. Every JSON reply is also checked against the
schema the document gives for its route and status, so a reply that drifts from its
declared type fails here even where the generated client would let it pass.
"""

import importlib
import json
import pathlib
import subprocess
import sys

import httpx
import jsonschema
from openapi_spec_validator import validate

base, token, work = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])

# The document is served without a token.
answer = httpx.get(f"{base}/v1/openapi.json")
assert answer.status_code == 200, answer.text
spec = answer.json()
validate(spec)
(work / "openapi.json").write_text(json.dumps(spec))

generated = subprocess.run(
    ["openapi-python-client", "generate", "--path", str(work / "openapi.json"), "--meta", "none",
     "--output-path", str(work / "rota_client"), "--overwrite"],
    capture_output=True, text=True,
)
assert generated.returncode == 0, generated.stdout + generated.stderr
# The generator warns about what it could not turn into code; nothing may be left out.
assert "Unable to" not in generated.stdout + generated.stderr, generated.stdout + generated.stderr

sys.path.insert(0, str(work))
client_module = importlib.import_module("rota_client")
api = lambda path: importlib.import_module(f"rota_client.api.{path}")  # noqa: E731
models = importlib.import_module("rota_client.models")

checked = 0


def conforms(route, method, response):
    """The reply's JSON fits the schema the document declares for this route and status."""
    global checked
    declared = spec["paths"][route][method]["responses"][str(response.status_code)]
    if "$ref" in declared:
        declared = spec["components"]["responses"][declared["$ref"].rsplit("/", 1)[1]]
    (media, content), = declared["content"].items()
    assert response.headers["content-type"].startswith(media), (route, response.headers["content-type"])
    schema = dict(content["schema"], components=spec["components"])
    jsonschema.Draft202012Validator(schema).validate(json.loads(response.content))
    checked += 1
    return response.parsed


client = client_module.AuthenticatedClient(base_url=base, token=token, raise_on_unexpected_status=True)

# Create an agent: 201, the agent as the API shows her.
created = api("agents.create_agent").sync_detailed(
    client=client, body=models.NewAgent(id="zoe", name="Zoe", queues=["sales"])
)
assert created.status_code == 201, created.content
zoe = conforms("/v1/agents", "post", created)
assert isinstance(zoe, models.AgentView) and zoe.id == "zoe" and zoe.queues == ["sales"], zoe

# Sign her in, start her work day (these rules track it) and put her in call-center mode.
conforms("/v1/agents/{id}/sign_in", "post", api("agents.sign_in").sync_detailed("zoe", client=client, body=models.Nothing()))
conforms("/v1/agents/{id}/work_day/start", "post",
         api("agents.start_work_day").sync_detailed("zoe", client=client, body=models.Nothing()))
conforms("/v1/agents/{id}/status", "put",
         api("agents.set_status").sync_detailed("zoe", client=client, body=models.StatusBody(status="callcenter")))

# A conversation arrives in her queue: 201, and it is offered to her.
arrived = api("conversations.create_conversation").sync_detailed(
    client=client, body=models.NewConversation(id="c1", queue="sales")
)
assert arrived.status_code == 201, arrived.content
changes = conforms("/v1/conversations", "post", arrived)
assert changes.id == "c1", changes
offered = [u for u in changes.updates if u.type_ == "offered"]
assert offered and offered[0]["agents"] == ["zoe"], changes.updates

# She accepts it without being named: whoever it is offered to.
accepted = conforms("/v1/conversations/{id}/accept", "post",
                    api("conversations.accept_conversation").sync_detailed("c1", client=client, body=models.AgentRef()))
assert "accepted" in [u.type_ for u in accepted.updates], accepted.updates

# Read back: the conversation is hers, and the lists find it by status and agent.
c1 = conforms("/v1/conversations/{id}", "get", api("conversations.get_conversation").sync_detailed("c1", client=client))
assert c1.status == models.ConversationStatus.ASSIGNED and c1.agent == "zoe", c1
listed = conforms("/v1/conversations", "get", api("conversations.list_conversations").sync_detailed(
    client=client, status=models.ConversationStatus.ASSIGNED, agent="zoe"))
assert [c.id for c in listed.conversations] == ["c1"] and listed.next_cursor is None, listed
her = conforms("/v1/agents/{id}", "get", api("agents.get_agent").sync_detailed("zoe", client=client))
assert her.state == models.State.BUSY and her.conversation == "c1", her

# Pages of one: each page names the next until the last.
seen, cursor = [], None
while True:
    page = conforms("/v1/agents", "get", api("agents.list_agents").sync_detailed(client=client, limit=1, cursor=cursor))
    seen += [a.id for a in page.agents]
    cursor = page.next_cursor
    if cursor is None:
        break
assert "zoe" in seen and len(seen) == len(set(seen)) > 1, seen

# The pickers and the other lists read through the client too.
for route, module in [("/v1/presences", "presences.list_presences"), ("/v1/pause_causes", "pause_causes.list_pause_causes"),
                      ("/v1/teams", "teams.list_teams"), ("/v1/queues", "queues.list_queues"),
                      ("/v1/timers", "timers.list_timers"), ("/v1/tasks", "tasks.list_tasks"),
                      ("/v1/workflows", "workflows.list_workflows"), ("/v1/scripts", "scripts.get_scripts"),
                      ("/v1/workflow_instances", "workflow_instances.list_workflow_instances"),
                      ("/v1/notifications", "notifications.list_notifications")]:
    conforms(route, "get", api(module).sync_detailed(client=client))

# A refusal is a problem document the client reads as one.
client = client_module.AuthenticatedClient(base_url=base, token=token)
missing = api("agents.get_agent").sync_detailed("nobody", client=client)
assert missing.status_code == 404, missing.content
problem = conforms("/v1/agents/{id}", "get", missing)
assert isinstance(problem, models.Problem) and problem.code == "unknown_agent", problem

print(f"ok: {checked} replies checked against their schemas")
