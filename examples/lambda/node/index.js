// An IoT Core custom authorizer as deployed to AWS Lambda (Node.js): nothing here knows about authprobe.
//
// authprobe's emulator runs it unmodified under the official runtime interface client:
//
//     npm install aws-lambda-ric
//     authprobe emulate --default-authorizer MyAuthorizer \
//         --authorizer-handler "cd examples/lambda/node && exec npx aws-lambda-ric index.handler"
//
// Tokens: `allow-me` connects, `raise-me` throws, `sleep-me` sleeps past IoT Core's 5 s limit,
// `context-me` throws an error that quotes its Lambda context; every other token is denied.

const REGION = "us-east-1";
const ACCOUNT = "123456789012";

function policy(clientId) {
  const arn = `arn:aws:iot:${REGION}:${ACCOUNT}`;
  return {
    Version: "2012-10-17",
    Statement: [
      { Effect: "Allow", Action: "iot:Connect", Resource: `${arn}:client/\${iot:ClientId}` },
      { Effect: "Allow", Action: ["iot:Publish", "iot:Receive"], Resource: `${arn}:topic/devices/${clientId}/*` },
      { Effect: "Allow", Action: "iot:Subscribe", Resource: `${arn}:topicfilter/devices/${clientId}/*` },
    ],
  };
}

exports.handler = async (event, context) => {
  const token = event.token || "";
  const clientId = ((event.protocolData || {}).mqtt || {}).clientId || "*";
  if (token === "raise-me") {
    throw new TypeError("the token store is unreachable");
  }
  if (token === "sleep-me") {
    await new Promise((resolve) => setTimeout(resolve, 6000));
  }
  if (token === "context-me") {
    throw new Error(
      `request ${context.awsRequestId} of ${context.invokedFunctionArn}, ${context.getRemainingTimeInMillis()} ms left`,
    );
  }
  const allowed = token === "allow-me";
  return {
    isAuthenticated: allowed,
    principalId: allowed ? "exampleDevice" : "denied",
    disconnectAfterInSeconds: 3600,
    refreshAfterInSeconds: 300,
    policyDocuments: allowed ? [policy(clientId)] : [],
  };
};
