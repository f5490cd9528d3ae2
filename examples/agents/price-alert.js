// @enclave {"name": "price-alert"}
// Composes agents: asks the price oracle (ctx.callAgent) and says whether the price moved more
// than a threshold since this agent's last call, which it remembers in ctx.storage.
//
// Input (JSON): {"oracle": <agent id>, "thresholdBps": 100, ...the oracle's own input}
// Output: abi.encode(bool moved, uint256 price, uint256 previousPrice), prices with 8 decimals.
export default async function main(input, ctx) {
  const { oracle, thresholdBps = 100, ...query } = input.json();
  if (!Number.isInteger(oracle)) throw new Error("the input names the oracle agent: {\"oracle\": <id>}");
  const [price] = ctx.abi.decode(["uint256"], await ctx.callAgent(oracle, JSON.stringify(query)));

  const key = `last:${oracle}:${query.pair ?? ""}`;
  const stored = ctx.storage.get(key);
  const previous = stored === null ? 0n : BigInt(stored);
  const change = price > previous ? price - previous : previous - price;
  const moved = previous > 0n && change * 10000n > BigInt(thresholdBps) * previous;
  ctx.storage.set(key, price.toString());
  ctx.log(`price ${price}, previous ${previous}, moved: ${moved}`);
  return ctx.abi.encode(["bool", "uint256", "uint256"], [moved, price, previous]);
}
