"""An IoT Core custom authorizer as deployed to AWS Lambda: nothing here knows about authprobe.

authprobe's emulator runs it unmodified under the official runtime interface client:

    python3 -m venv .venv && .venv/bin/pip install awslambdaric
    authprobe emulate --default-authorizer MyAuthorizer \
        --authorizer-handler "cd examples/lambda/python && exec ../../../.venv/bin/python -m awslambdaric handler.lambda_handler"

Tokens: `allow-me` connects (and may publish/subscribe under devices/<clientId>/), `raise-me` raises
an exception, `sleep-me` sleeps past IoT Core's 5 s limit, `context-me` raises an error that quotes
its Lambda context; every other token is denied.
"""

import time

REGION = "us-east-1"
ACCOUNT = "123456789012"


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
    client_id = event.get("protocolData", {}).get("mqtt", {}).get("clientId", "*")
    if token == "raise-me":
        raise ValueError("the token store is unreachable")
    if token == "sleep-me":
        time.sleep(6)
    if token == "context-me":
        raise RuntimeError(
            f"request {context.aws_request_id} of {context.invoked_function_arn}, "
            f"{context.get_remaining_time_in_millis()} ms left"
        )
    allowed = token == "allow-me"
    return {
        "isAuthenticated": allowed,
        # principalId must match [a-zA-Z0-9]{1,128}: never put the raw username here.
        "principalId": "exampleDevice" if allowed else "denied",
        "disconnectAfterInSeconds": 3600,
        "refreshAfterInSeconds": 300,
        "policyDocuments": [policy(client_id)] if allowed else [],
    }
