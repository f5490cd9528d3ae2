// Runs @chainlink/functions-toolkit's helpers against FunctionsRouterAdapter on a running stack,
// as a Functions user's scripts call them, and prints what each returned as one JSON object.
// Inputs (environment): RPC_URL, PRIVATE_KEY (a subscription owner's), ADAPTER, CLIENT (a
// FunctionsClientExample pointed at the adapter, a consumer of SUBSCRIPTION), SUBSCRIPTION, DON_ID.
const {
  buildRequestCBOR,
  decodeResult,
  Location,
  CodeLanguage,
  ReturnType,
  ResponseListener,
  SubscriptionManager,
} = require("@chainlink/functions-toolkit");
const { ethers } = require("ethers");

const CLIENT_ABI = [
  "function sendRequest(string source, bytes encryptedSecretsReferences, string[] args, uint64 subscriptionId, bytes32 jobId)",
];
const ADAPTER_ABI = [
  "function fundSubscription(uint64 subscriptionId) payable",
  "function sendRequest(uint64 subscriptionId, bytes data, uint16 dataVersion, uint32 callbackGasLimit, bytes32 donId) returns (bytes32)",
];

// listenForResponses, started before the request is sent: an answer here comes a block or two
// after its request, which can be before listenForResponseFromTransaction (which starts listening only
// once the request's receipt is in) would be looking.
async function answer(listener, subscriptionId, send) {
  const processed = new Promise((resolve) => listener.listenForResponses(subscriptionId, resolve));
  await new Promise((resolve) => setTimeout(resolve, 500)); // the provider's first poll
  const receipt = await (await send()).wait();
  const response = await Promise.race([
    processed,
    new Promise((_, reject) => setTimeout(() => reject(new Error("no RequestProcessed in 60 s")), 60000)),
  ]);
  return {
    sameRequest: response.requestId === receipt.logs[0].topics[1],
    fulfillmentCode: response.fulfillmentCode,
    errorString: response.errorString,
    value: decodeResult(response.responseBytesHexstring, ReturnType.uint256).toString(),
  };
}

async function main() {
  const env = process.env;
  const provider = new ethers.providers.JsonRpcProvider(env.RPC_URL);
  provider.pollingInterval = 100;
  const signer = new ethers.Wallet(env.PRIVATE_KEY, provider);
  const out = {};

  // SubscriptionManager: everything but LINK funding (subscriptions hold ETH here).
  const manager = new SubscriptionManager({
    signer,
    linkTokenAddress: ethers.constants.AddressZero,
    functionsRouterAddress: env.ADAPTER,
  });
  await manager.initialize();
  const created = await manager.createSubscription();
  const consumer = ethers.Wallet.createRandom().address;
  await manager.addConsumer({ subscriptionId: created, consumerAddress: consumer });
  const info = await manager.getSubscriptionInfo(created);
  out.subscription = { id: Number(created), owner: info.owner, consumers: info.consumers, balance: info.balance.toString() };
  await manager.removeConsumer({ subscriptionId: created, consumerAddress: consumer });
  out.consumersAfterRemoval = (await manager.getSubscriptionInfo(created)).consumers;
  await manager.cancelSubscription({ subscriptionId: created, refundAddress: signer.address });
  try {
    await manager.fundSubscription({ subscriptionId: env.SUBSCRIPTION, juelsAmount: "1" });
    out.linkFunding = "worked";
  } catch (error) {
    out.linkFunding = "refused";
  }

  // ResponseListener and decodeResult: the answer to a request of Chainlink's example client, as a
  // user's script waits for it.
  const source = "return Functions.encodeUint256(Number(args[0]) + Number(args[1]));";
  const args = ["40", "2"];
  const client = new ethers.Contract(env.CLIENT, CLIENT_ABI, signer);
  const listener = new ResponseListener({ provider, functionsRouterAddress: env.ADAPTER });
  out.fromClient = await answer(listener, env.SUBSCRIPTION, () =>
    client.sendRequest(source, "0x", args, env.SUBSCRIPTION, env.DON_ID),
  );

  // buildRequestCBOR: a request built off-chain (one CBOR map, unlike FunctionsRequest's pairs)
  // and sent as bytes by a consumer of a subscription funded in ETH, here the script's own account.
  const adapter = new ethers.Contract(env.ADAPTER, ADAPTER_ABI, signer);
  const own = await manager.createSubscription({ consumerAddress: signer.address });
  await (await adapter.fundSubscription(own, { value: ethers.utils.parseEther("0.01") })).wait();
  const cbor = buildRequestCBOR({ codeLocation: Location.Inline, codeLanguage: CodeLanguage.JavaScript, source, args });
  out.fromToolkitCbor = await answer(listener, own, () => adapter.sendRequest(own, cbor, 1, 100000, env.DON_ID));
  console.log(JSON.stringify(out));
  process.exit(0);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
