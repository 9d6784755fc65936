#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/seeds/ from the test fixtures (GitHub payloads, the RFC 9535
compliance suite, GitHub's HMAC vector). Run from the repository root: python3 fuzz/make_seeds.py"""
import hashlib, hmac, json, os, pathlib, urllib.parse

root = pathlib.Path(__file__).resolve().parent.parent
fixtures = root / "tests" / "fixtures"
seeds = root / "fuzz" / "seeds"
payloads = sorted(p for p in (fixtures / "github").rglob("*.json"))
cts = json.loads((fixtures / "cts.json").read_text())["tests"]

def write(target, name, data):
    d = seeds / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)

# definition: action configuration line, then a put-webhook document.
config = json.dumps({"Branch": "main", "Owner": "octo", "Repo": "app"}).encode()
write("definition", "example", config + b"\n" + (root / "examples" / "webhook.json").read_bytes())
base = {"name": "n", "targetPipeline": "p", "targetAction": "Source", "authentication": "UNAUTHENTICATED",
        "authenticationConfiguration": {}}
for i, case in enumerate(c for c in cts if len(c["selector"]) <= 150):
    if i % 7:
        continue
    d = dict(base, filters=[{"jsonPath": case["selector"], "matchEquals": "refs/heads/{Branch}"}])
    write("definition", f"cts-{i:03}", config + b"\n" + json.dumps({"webhook": d}).encode())
for auth, conf in [("IP", {"AllowedIPRange": "10.0.0.0/8"}), ("IP", {"AllowedIPRange": "2001:db8::1"}),
                   ("GITHUB_HMAC", {"SecretToken": "secret-token-xyz"}), ("GITHUB_HMAC", {}), ("IP", {"SecretToken": "x"})]:
    d = dict(base, filters=[], authentication=auth, authenticationConfiguration=conf)
    write("definition", f"auth-{auth}-{len(conf)}-{int(hashlib.sha1(str(conf).encode()).hexdigest(), 16) % 1000}", config + b"\n" + json.dumps(d).encode())

# evaluate: flags (1 = sign with SHA-256), extra-header length 0, then the body.
for p in payloads:
    body = p.read_bytes()
    write("evaluate", f"signed-{p.parent.name}-{p.stem}", bytes([1 | (1 << 3), 0]) + body)
form = b"payload=" + urllib.parse.quote_from_bytes(payloads[0].read_bytes(), safe=b"").encode()
write("evaluate", "form", bytes([1 | 4, 0]) + form)
write("evaluate", "unsigned-ipv6", bytes([3 << 3, 0]) + payloads[0].read_bytes())

# differential: a path line, then JSON; singular selectors of the suite and paths into payloads.
for i, case in enumerate(cts):
    if case.get("invalid_selector"):
        continue
    write("differential", f"cts-{i:03}", case["selector"].encode() + b"\n" + json.dumps(case["document"]).encode())
for p in payloads:
    for path in ["$.ref", "$.repository.full_name", "$['repository']['owner'].login", "$.commits[0].id", "$.action"]:
        write("differential", f"{p.parent.name}-{p.stem}-{abs(hash(path)) % 10000}", path.encode() + b"\n" + p.read_bytes())

# signature_header: selector byte, the SHA-256 value, newline, the SHA-1 value.
body = b'{"ref":"refs/heads/main"}'
key = b"header-fuzz-secret"
s256 = b"sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest().encode()
s1 = b"sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest().encode()
write("signature_header", "sha256", b"\x01" + s256)
write("signature_header", "sha256-upper", b"\x01" + s256.upper().replace(b"SHA256=", b"sha256="))
write("signature_header", "sha1", b"\x02\n" + s1)
write("signature_header", "both", b"\x03" + s256 + b"\n" + s1)
write("signature_header", "ows", b"\x01 \t" + s256 + b" ")
vector = json.loads((fixtures / "hmac-vectors.json").read_text())[0]
write("signature_header", "github-vector", b"\x01" + vector["x_hub_signature_256"].encode())

# bounded: a path-length byte, the path, then the body; every valid suite selector with its
# document, and the shapes that cost the most (deep nesting, wide arrays).
for i, case in enumerate(c for c in cts if not c.get("invalid_selector") and len(c["selector"].encode()) < 256):
    path = case["selector"].encode()
    write("bounded", f"cts-{i:03}", bytes([len(path)]) + path + json.dumps(case["document"]).encode())
deep = b"[" * 128 + b"]" * 128
for j, path in enumerate([b"$..*..*..*", b"$..[?@..[?@..*]]", b"$..[?count(@..*) > 1]", b"$..*[::-1]",
                          b"$[?match(@.a, 'a.*')]", b"$.commits[*].modified[*]"]):
    write("bounded", f"shape-{j}", bytes([len(path)]) + path + deep)

# control_plane: the X-Amz-Target value, newline, the body; one valid call per operation, then
# a few that fail (no target, unknown operation, broken JSON, wrong field types).
t = "CodePipeline_20150709."
pipeline = (root / "examples" / "pipeline.json").read_bytes()
calls = {
    "PutWebhook": (root / "examples" / "webhook.json").read_bytes(),
    "ListWebhooks": b'{"MaxResults": 10, "NextToken": "aG9vaw"}',
    "DeleteWebhook": b'{"name": "hello-world-master"}',
    "RegisterWebhookWithThirdParty": b'{"webhookName": "hello-world-master"}',
    "DeregisterWebhookWithThirdParty": b'{"webhookName": "hello-world-master"}',
    "CreatePipeline": b'{"pipeline": ' + pipeline + b', "tags": [{"key": "team", "value": "platform"}]}',
    "UpdatePipeline": b'{"pipeline": ' + pipeline + b"}",
    "GetPipeline": b'{"name": "hello-world-pipeline", "version": 2}',
    "DeletePipeline": b'{"name": "hello-world-pipeline"}',
    "ListPipelines": b'{"maxResults": 3, "nextToken": "YXBw"}',
    "ListPipelineExecutions": b'{"pipelineName": "hello-world-pipeline", "maxResults": 5, "filter": {}}',
    "GetPipelineExecution": b'{"pipelineName": "p", "pipelineExecutionId": "f825eb18-df07-4bd4-802f-9b174e347dca"}',
}
for op, body in calls.items():
    write("control_plane", op, (t + op).encode() + b"\n" + body)
write("control_plane", "no-target", b"{}")
write("control_plane", "unknown", (t + "StartPipelineExecution").encode() + b"\n{}")
write("control_plane", "broken-json", (t + "GetPipeline").encode() + b'\n{"name": ')
write("control_plane", "wrong-type", (t + "ListWebhooks").encode() + b'\n{"MaxResults": "ten"}')
write("control_plane", "empty-body", (t + "ListPipelines").encode() + b"\n")
