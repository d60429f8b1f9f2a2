#!/usr/bin/env python3
"""An example IoT Core custom authorizer, runnable by `authprobe emulate --authorizer-command`.

`lambda_handler` is what you would deploy to AWS Lambda. Run as a script, it reads the event JSON
that IoT Core (or the emulator) sends on stdin and prints the response JSON on stdout, so the same
code can be tried locally:

    authprobe emulate --authorizer-command "python3 examples/authorizer.py" --default-authorizer MyAuthorizer

It allows the token `allow-me` to connect as any client ID and to publish/subscribe/receive under
`devices/<clientId>/...`, and denies every other token.
"""

import json
import sys

REGION = "us-east-1"
ACCOUNT = "123456789012"
ALLOWED_TOKENS = {"allow-me"}


def policy(client_id):
    arn = f"arn:aws:iot:{REGION}:{ACCOUNT}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/${{iot:ClientId}}"},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": f"{arn}:topic/devices/{client_id}/*"},
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": f"{arn}:topicfilter/devices/{client_id}/*"},
        ],
    }


def lambda_handler(event, context):
    token = event.get("token", "")
    mqtt = event.get("protocolData", {}).get("mqtt", {})
    client_id = mqtt.get("clientId", "*")
    allowed = token in ALLOWED_TOKENS
    return {
        "isAuthenticated": allowed,
        # principalId must match [a-zA-Z0-9]{1,128}: never put the raw username here.
        "principalId": "exampleDevice" if allowed else "denied",
        "disconnectAfterInSeconds": 3600,
        "refreshAfterInSeconds": 300,
        "policyDocuments": [policy(client_id)] if allowed else [],
    }


if __name__ == "__main__":
    print(json.dumps(lambda_handler(json.load(sys.stdin), None)))
