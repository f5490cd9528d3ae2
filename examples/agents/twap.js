// @enclave {"name": "twap", "allowHosts": ["api.coinbase.com"], "limits": {"httpCalls": 1}}
// A time-weighted average price, kept across calls in ctx.storage: each call observes the
// source's price and returns the average over the window, as a uint256 with 8 decimals.
//
// Input (JSON): {"source": "https://.../price", "windowS": 3600, "now": <unix seconds, optional>}
const MAX_SAMPLES = 256;

export default async function main(input, ctx) {
  const {
    source = "https://api.coinbase.com/v2/prices/ETH-USD/spot",
    windowS = 3600,
    now = Math.floor(Date.now() / 1000),
  } = input.text ? input.json() : {};
  const response = await ctx.fetch(source, { timeoutMs: 3000 });
  if (!response.ok) throw new Error(`the price source answered ${response.status}`);
  const body = response.json();
  const price = Number(body.price ?? body.data?.amount);
  if (!Number.isFinite(price) || price <= 0) throw new Error("the price source gave no price");

  const samples = JSON.parse(ctx.storage.get("samples") ?? "[]").filter(([t]) => t > now - windowS);
  samples.push([now, price]);
  ctx.storage.set("samples", JSON.stringify(samples.slice(-MAX_SAMPLES)));

  // Each price holds from its time until the next sample's (the last one until now).
  let weighted = 0;
  let total = 0;
  samples.forEach(([t, p], i) => {
    const until = i + 1 < samples.length ? samples[i + 1][0] : now;
    const span = Math.max(until - t, 0);
    weighted += p * span;
    total += span;
  });
  const twap = total > 0 ? weighted / total : price;
  ctx.log(`${samples.length} samples over ${total} s: ${twap}`);
  return ctx.abi.encode(["uint256"], [BigInt(Math.round(twap * 1e8))]);
}
