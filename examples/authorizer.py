#!/usr/bin/env python3
"""The example Lambda handler (examples/lambda/python/handler.py) run as a command, for
`authprobe emulate --authorizer-command`: it reads the event JSON that IoT Core (or the emulator)
sends on stdin and prints the response JSON on stdout.

    authprobe emulate --authorizer-command "python3 examples/authorizer.py" --default-authorizer MyAuthorizer

The same handler runs unmodified behind the emulator's Lambda Runtime API with
`--authorizer-handler` (see the README), about 16 times as fast as one process per connection.
It allows the token `allow-me` to connect as any client ID and to publish/subscribe/receive under
`devices/<clientId>/...`, and denies every other token.
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lambda", "python"))

from handler import lambda_handler  # noqa: E402  (the path above makes it importable)

if __name__ == "__main__":
    print(json.dumps(lambda_handler(json.load(sys.stdin), None)))
