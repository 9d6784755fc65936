#!/usr/bin/env python3
"""Extracts, from botocore's CodePipeline service model, the input shapes of the operations this
crate serves or will serve, as the compact table src/registry/model/codepipeline-2015-07-09.json.

Usage: tools/extract-codepipeline-model.py path/to/botocore/data/codepipeline/2015-07-09/service-2.json COMMIT

The model is botocore's (https://github.com/boto/botocore, Apache License 2.0, Copyright Amazon.com,
Inc. or its affiliates); the table keeps only what validation reads: each shape's type, required
members, members in model order, list member / map key and value shapes, min, max, pattern, enum.
"""
import json
import sys

OPERATIONS = [
    "PutWebhook", "ListWebhooks", "DeleteWebhook", "RegisterWebhookWithThirdParty",
    "DeregisterWebhookWithThirdParty", "CreatePipeline", "UpdatePipeline", "GetPipeline",
    "DeletePipeline", "ListPipelines", "ListPipelineExecutions", "GetPipelineExecution",
    "TagResource", "UntagResource", "ListTagsForResource", "StartPipelineExecution",
    "StopPipelineExecution", "GetPipelineState", "ListActionExecutions",
]


def main():
    model = json.load(open(sys.argv[1]))
    commit = sys.argv[2]
    shapes = model["shapes"]
    out = {}

    def walk(name):
        if name in out:
            return
        s = shapes[name]
        t = {"type": s["type"]}
        out[name] = t
        for k in ("min", "max", "pattern", "enum"):
            if k in s:
                t[k] = s[k]
        if s.get("required"):
            t["required"] = s["required"]
        if s["type"] == "structure":
            t["members"] = [[m, v["shape"]] for m, v in s["members"].items()]
            for _, v in s["members"].items():
                walk(v["shape"])
        elif s["type"] == "list":
            t["member"] = s["member"]["shape"]
            walk(t["member"])
        elif s["type"] == "map":
            t["key"] = s["key"]["shape"]
            t["value"] = s["value"]["shape"]
            walk(t["key"])
            walk(t["value"])

    ops = {}
    for op in OPERATIONS:
        ops[op] = model["operations"][op]["input"]["shape"]
        walk(ops[op])
    table = {
        "source": "botocore/data/codepipeline/2015-07-09/service-2.json at boto/botocore@" + commit
        + " (Apache License 2.0, Copyright Amazon.com, Inc. or its affiliates); extracted by "
        "tools/extract-codepipeline-model.py",
        "operations": [[op, ops[op]] for op in OPERATIONS],
        "shapes": [[n, out[n]] for n in sorted(out)],
    }
    json.dump(table, sys.stdout, indent=0, sort_keys=False)
    sys.stdout.write("\n")


main()
