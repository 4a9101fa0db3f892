"""The Dataswyft part of `datapost demo`: the app on a sandbox PDA, a user's token, records,
a batch and a file, then what the PDA holds compared with what was enqueued."""

from __future__ import annotations

import hashlib
import uuid

import httpx

from ..dataswyft import PdaBatchWrite, PdaFileWrite, PdaRecordWrite
from .output import Output

NAMESPACE = "datapost-demo"


def pda_writes(user: str) -> tuple[list, dict]:
    run = uuid.uuid4().hex[:8]
    records = [{"run": run, "kind": "steps", "value": 4200},
               {"run": run, "kind": "sleep", "hours": 7.5}]
    batch = [{"endpoint": f"{NAMESPACE}/profile", "data": {"run": run, "name": "Ada"}},
             {"endpoint": f"{NAMESPACE}/notes", "data": {"run": run, "text": "hello, PDA"}}]
    photo = b"\x89PNG demo image " + run.encode() * 100
    writes = [
        PdaRecordWrite(user=user, namespace=NAMESPACE, endpoint="activity", data=records[0]),
        PdaRecordWrite(user=user, namespace=NAMESPACE, endpoint="activity", data=[records[1]]),
        PdaBatchWrite(user=user, items=batch),
        PdaFileWrite(user=user, data=photo, name="photo.png", source="datapost-demo",
                     tags=["demo"], content_type="image/png"),
    ]
    expected = {"records": records + [item["data"] for item in batch],
                "file_sha256": hashlib.sha256(photo).hexdigest(), "file_size": len(photo)}
    return writes, expected


def verify_pda(pda: dict, expected: dict, out: Output) -> dict:
    with httpx.Client(timeout=30) as http:
        records = http.get(pda["url"] + "/_control/records",
                           params={"namespace": NAMESPACE}).raise_for_status().json()["records"]
        files = http.get(pda["url"] + "/_control/files").raise_for_status().json()["files"]
        stored = [r["data"] for r in records]
        missing = [r for r in expected["records"] if r not in stored]
        if missing:
            raise RuntimeError(f"the PDA is missing {len(missing)} record(s)")
        [photo] = [f for f in files if f["name"] == "photo.png"]
        content = http.get(f"{pda['url']}/_control/files/{photo['fileId']}/content").content
    if hashlib.sha256(content).hexdigest() != expected["file_sha256"]:
        raise RuntimeError("the PDA's copy of photo.png differs from what was enqueued")
    for record in records:
        out.say(f"      record  {record['endpoint']:<24} {record['recordId'][:8]}…  matches")
    out.say(f"      file    {photo['fileId']:<24} {len(content):>6} bytes  sha256 matches")
    return {"records": len(expected["records"]), "file": photo["fileId"]}
