// @enclave {"name": "price-oracle", "allowHosts": ["api.coinbase.com", "api.kraken.com", "api.gemini.com"], "limits": {"httpCalls": 5, "wallTimeMs": 8000}}
// The median of several price sources, as a uint256 with 8 decimals (for PriceFeedConsumer).
// One source down, slow or lying does not move the median of three that agree.
//
// Input (JSON, optional): {"pair": "ETH-USD", "sources": ["https://.../{pair}", ...]}
const DEFAULT_SOURCES = [
  "https://api.coinbase.com/v2/prices/{pair}/spot",
  "https://api.kraken.com/0/public/Ticker?pair={pair}",
  "https://api.gemini.com/v1/pubticker/{pair}",
];

// Reads the price out of the answer shapes the usual exchanges give.
function priceOf(answer) {
  const candidates = [answer?.price, answer?.data?.amount, answer?.last, answer?.result?.price];
  for (const value of candidates) {
    const price = Number(value);
    if (Number.isFinite(price) && price > 0) return price;
  }
  return NaN;
}

// The lower median: always a price some source actually reported.
function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

export default async function main(input, ctx) {
  const { pair = "ETH-USD", sources = DEFAULT_SOURCES } = input.text ? input.json() : {};
  const answers = await ctx.fetchAll(
    sources.map((url) => ({ url: url.replace("{pair}", encodeURIComponent(pair)), timeoutMs: 3000 })),
  );
  const prices = [];
  answers.forEach((answer, i) => {
    if (answer.error || !answer.ok) {
      ctx.log(`source ${i} failed: ${answer.error ?? answer.status}`);
      return;
    }
    const price = priceOf(answer.json());
    if (Number.isNaN(price)) ctx.log(`source ${i} gave no price`);
    else prices.push(price);
  });
  if (prices.length < Math.ceil(sources.length / 2)) {
    throw new Error(`only ${prices.length} of ${sources.length} sources gave a price`);
  }
  const price = median(prices);
  ctx.log(`${pair}: ${prices.join(", ")} -> ${price}`);
  return ctx.abi.encode(["uint256"], [BigInt(Math.round(price * 1e8))]);
}
