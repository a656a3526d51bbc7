#!/usr/bin/env python3
"""tests/support/fake_n8n.py plus a second workflow whose Gmail node needs a
personal credential (gmailOAuth2): running it is refused with
EE_ECREDENTIALS and its gaps. Prints "PORT <n>", serves until killed."""
import copy
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "tests", "support"))
import fake_n8n  # noqa: E402
import fake_upstream  # noqa: E402

GMAIL = copy.deepcopy(fake_n8n.WORKFLOW)
GMAIL.update({"id": "hostsGmail00001", "name": "Hosts gmail"})
GMAIL["nodes"][0]["parameters"]["path"] = "ee-gmail"
GMAIL["nodes"][0]["webhookId"] = "ee-gmail"
GMAIL["nodes"].append({"id": "n3", "name": "Gmail", "type": "n8n-nodes-base.gmail",
                       "typeVersion": 2, "position": [400, 0], "parameters": {},
                       "credentials": {"gmailOAuth2": {"id": "1", "name": "Gmail"}}})
GMAIL["connections"]["Set"] = {"main": [[{"node": "Gmail", "type": "main", "index": 0}]]}


class Handler(fake_n8n.Handler):
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = fake_n8n.Handler.handle_any

    def route(self, method, path, segments, query, body, knobs):
        if method == "GET" and segments[:3] == ["api", "v1", "workflows"]:
            if len(segments) == 3:
                return self.send(200, {"data": [fake_n8n.WORKFLOW, GMAIL], "nextCursor": None})
            if len(segments) == 4 and segments[3] == GMAIL["id"]:
                return self.send(200, GMAIL)
        return super().route(method, path, segments, query, body, knobs)


if __name__ == "__main__":
    fake_upstream.serve(Handler)
