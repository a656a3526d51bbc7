"""The Python part of docs/tutorial.md: run one catalog workflow through n8n.

    python3 examples/tutorial/first_run.py [WORDS]      (default WORDS: "echo")

Configuration comes from the environment (N8N_BASE_URL, N8N_API_KEY,
API_KEY_ENCRYPTION_SECRET, EE_STORAGE_URI ...); the library from
EXECENGINE_LIBRARY, the install prefix or the loader (docs/bindings.md).
Prints the same lines as the C program (examples/tutorial/first-run.c).
"""
import json
import sys

import execengine as ee


def main(words):
    # 1. configuration from the environment, then the engine
    with ee.Config() as cfg:
        cfg.load_env()
        engine = ee.Engine.open(cfg)
    with engine, ee.Principal("tutorial-ws", "tutorial-user", "tutorial-org") as who:
        # 2. the catalog: every active n8n workflow becomes an entry
        engine.catalog.sync()
        # 3-4. find the workflow as a customer browsing the catalog would
        found = engine.catalog.search(who, q=words, limit=1)["data"]
        if not found:
            print(f'first-run: no workflow matches "{words}"', file=sys.stderr)
            return 1
        entry = found[0]
        print(f"workflow {entry['id']}: {entry['name']}")
        # 5. run it and wait; a refusal raises its own exception
        try:
            record = engine.executions.run(who, entry["id"], parameters={"a": 2, "b": 3})
        except ee.QuotaExceeded as e:
            print(f"first-run: over quota, retry in {e.retry_after} s", file=sys.stderr)
            return 1
        except ee.CredentialGap as e:
            print(f"first-run: credentials missing: {e.gaps}", file=sys.stderr)
            return 1
        except ee.ExecEngineError as e:
            print(f"first-run: the run failed: {e.name}: {e.message}", file=sys.stderr)
            return 1
        print(f"execution {record['_id']}: {record['status']}")
        # 6. its results and its cost (0 here: no provider was called)
        compact = dict(separators=(",", ":"))
        print("results: " + json.dumps(engine.executions.results(who, record["_id"]), **compact))
        print("cost: " + json.dumps(engine.executions.cost(who, record["_id"]), **compact))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "echo"))
